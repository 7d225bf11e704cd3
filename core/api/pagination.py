from rest_framework import exceptions, pagination

from core.errors import ValidationFailed


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 100


class CursorPagination(pagination.CursorPagination):
    """Newest first, stable under inserts (an append-only log grows while it is paged).
    Keeps the list shape of every other list: count, next, previous, results."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 200

    def decode_cursor(self, request):
        """A cursor that is not one of ours is a bad parameter (400, naming it), not a missing
        resource: DRF answers 404, which a client reads as "the endpoint is gone"."""
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            message = "Not a cursor of this list: follow the next and previous links as given."
            raise ValidationFailed(f"cursor: {message}", details={"cursor": [message]}) from None

    def paginate_queryset(self, queryset, request, view=None):
        self.count = queryset.count()
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        from rest_framework.response import Response

        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )
