"""G2P Connect disburse (https://github.com/G2P-Connect/specs, ``api/g2p-disburse.yaml``): the message
envelope (:mod:`.messages`), a disburse provider API in front of any payment provider (:mod:`.server`),
and a payment-provider adapter that pays through any G2P Connect disburse provider (:mod:`.client`)."""
