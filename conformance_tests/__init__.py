"""The dpi-blocks conformance suite: profiles of tests citing requirement IDs from `standards`, run over HTTP
against a system's URL, with generated (property-based) cases, a callback receiver for asynchronous flows,
and reports (terminal, JUnit XML, JSON, HTML, and a JWS-signed summary).
"""

from conformance_tests.model import ConformanceTest, Evidence, Finding, Profile, Status
from conformance_tests.receiver import (
    CallbackReceiver,
    CallbackTimeout,
    ReceivedCallback,
    verify_callback_signature,
)
from conformance_tests.registry import UnknownProfile, find_profile, known_profiles, register_profile
from conformance_tests.reports import ReportFiles, write_reports
from conformance_tests.results import Baseline, BaselineError, RequirementResult, RunReport
from conformance_tests.runner import run_conformance
from conformance_tests.signed_summary import load_signing_key, sign_summary, verify_summary
from conformance_tests.target import Exchange, RunOptions, TargetSession, TargetUnreachable

__all__ = [
    "Baseline",
    "BaselineError",
    "CallbackReceiver",
    "CallbackTimeout",
    "ConformanceTest",
    "Evidence",
    "Exchange",
    "Finding",
    "Profile",
    "ReceivedCallback",
    "ReportFiles",
    "RequirementResult",
    "RunOptions",
    "RunReport",
    "Status",
    "TargetSession",
    "TargetUnreachable",
    "UnknownProfile",
    "find_profile",
    "known_profiles",
    "load_signing_key",
    "register_profile",
    "run_conformance",
    "sign_summary",
    "verify_callback_signature",
    "verify_summary",
    "write_reports",
]
