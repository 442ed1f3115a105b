"""The payments adapter block: one provider contract, adapters, an ID-to-account mapper with the
citizen's choice, exactly-once batch disbursement and reconciliation."""
