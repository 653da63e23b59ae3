"""Firmware baselines, inventory scans and compliance (issue: BMC control and firmware)."""
