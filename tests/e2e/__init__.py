"""Black-box acceptance tests: the real `python -m supervisor` process, driven over HTTP."""
