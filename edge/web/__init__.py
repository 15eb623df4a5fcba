"""The clinic web page and its JSON API."""
