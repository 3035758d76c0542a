"""The UI's pages, one module per area; each adds its routes to relay.web.ui.blueprint.bp."""
