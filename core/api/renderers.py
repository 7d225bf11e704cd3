from rest_framework.renderers import JSONRenderer


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps successful `/api/v1/` payloads in SPEC's success envelope.

    Errors arrive already shaped by the exception handler and pass through unchanged.
    Views that must keep a seed's own top-level shape (the widget token, the seed-000
    widget API) use `PlainJSONRenderer` instead.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code < 400:
            data = {"status": "success", "status_code": response.status_code, "data": data}
        return super().render(data, accepted_media_type, renderer_context)


class PlainJSONRenderer(JSONRenderer):
    """JSON exactly as the view returns it (seed shapes that are not enveloped)."""
