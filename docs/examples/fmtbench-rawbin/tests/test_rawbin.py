"""The plugin proves the Reader contract with fmtbench's own conformance kit."""
import pytest

from fmtbench.testing import ReaderContract


class TestRawbin(ReaderContract):
    @pytest.fixture(params=["rawbin", "rawbin/align4096"])
    def case_id(self, request):
        return request.param
