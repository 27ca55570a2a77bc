"""The API's one body parser: DRF's JSON parser, with a body nested deeper
than Python's decoder goes (its RecursionError is no ValueError) refused as
malformed JSON is: a 400, never a 500 (as SCIM does, scim.views). The bearer
check reads the body too, so this held for anyone, with no token."""

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
