"""The web surfaces: the JSON API (one blueprint per resource) and the server-rendered UI."""
