"""The referral domain: pure model and rules, no I/O (the catalogue is read once at start-up)."""
