"""The findings the contract defines, for tests that check every one appears."""

from typing import get_args

from cdi_stream.contract import Finding

ALL_FINDINGS = frozenset(get_args(Finding))
