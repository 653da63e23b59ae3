"""Node inventory: enrollment, updates, the lifecycle state machine and its event log."""
