"""An example driftsched plugin package (see README.md)."""

from driftsched_ltwf.policy import LongestWaitingTenantFirst

__all__ = ["LongestWaitingTenantFirst"]
