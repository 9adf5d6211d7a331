"""schemathesis hooks for the contract test: tus chunks are raw bytes
(`application/offset+octet-stream`), which schemathesis has no serializer for."""

import schemathesis


@schemathesis.serializer("application/offset+octet-stream")
def offset_octet_stream(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode()
