"""Browser tests: headless Chromium as the judge of the plugin's CORS verdicts (loopback only)."""
