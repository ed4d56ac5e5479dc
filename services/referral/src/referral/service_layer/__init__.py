"""The referral service's command and query handlers: what the HTTP handlers and the consumer call."""
