"""HTTP routes: the static client, dev tokens, transcript exports, metrics."""
