"""What the client API and the services share: field types, label objects, vector specs, Arrow framing,
exception classes, status mapping, transport constants, scan status, storage connectors and the bag format.

The core imports neither the client API nor a service (``lint-imports`` checks it; see "Package layout" in
docs/design.md), so a service loads no client code and the core changes with both sides in view.
"""
