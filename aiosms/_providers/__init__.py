"""Gateway adapters: one module per gateway, one method per documented call."""
