"""Assistant actions: what may be saved, and how a call's URL is built from its arguments.

An action is offered to the LLM as a function ("tool"): `name` and `description` are what
the model reads, `parameters` (a JSON Schema object) what it must send. Every rule here
runs when an operator saves an action (API or dashboard) and again, where it matters, when
the model calls it:

- `name`: an identifier (letters, digits, `_`, `-`; starts with a letter; ≤ 64), unique per
  assistant;
- `url_template`: an absolute http(s) URL whose path and query may hold `{placeholder}`s,
  each a property of `parameters` and required by it; the scheme, host and port are fixed
  (never filled from arguments), no user info, no fragment. Filled values are URL-encoded
  (`/`, `?`, `#`, `&` included), so an argument can never change where the request goes;
- `parameters`: a valid JSON Schema (checked with `jsonschema`, Draft 2020-12) of type
  `object`, at most 20,000 characters;
- `headers`: at most 20, names are HTTP tokens (not `Host`, `Content-Length`, …), values a
  single line of at most 4,096 characters; stored encrypted, never returned.

Where the request goes (public addresses only, unless SCRAPE_ALLOWLIST: SPEC "Fetching
URLs") is checked by `core.fetcher` when the action is saved and again at every call, after
DNS resolution (which may have changed), like every other outbound request.
"""

from __future__ import annotations

import json
import re
from string import Formatter
from urllib.parse import quote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from core import fetcher
from core.crypto import decrypt, encrypt

HEADER_PURPOSE = "action header"
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
PLACEHOLDER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
HEADER_NAME_PATTERN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
FORBIDDEN_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "accept-encoding",
}
MAX_HEADERS = 20
MAX_HEADER_VALUE = 4096
MAX_SCHEMA_CHARS = 20_000
MAX_DESCRIPTION = 1000


class ActionInvalid(ValueError):
    """An action field is not acceptable; `field` names it, the message says why."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def name_validate(value: str) -> str:
    value = (value or "").strip()
    if not NAME_PATTERN.match(value):
        raise ActionInvalid(
            "name",
            "Use an identifier: letters, digits, '_' or '-', starting with a letter, at most 64 characters.",
        )
    return value


def description_validate(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ActionInvalid(
            "description", "Say what the action does; the model reads it to decide when to call it."
        )
    if len(value) > MAX_DESCRIPTION:
        raise ActionInvalid("description", f"At most {MAX_DESCRIPTION} characters.")
    return value


def placeholders(template: str) -> list[str]:
    """The `{name}` placeholders of a URL template, in order (raises ActionInvalid if malformed)."""
    names = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError as error:
        raise ActionInvalid("url_template", f"Unbalanced braces in the URL template ({error}).") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion or not PLACEHOLDER_PATTERN.match(field):
            raise ActionInvalid(
                "url_template", f"{{{field}}} is not a placeholder: use {{name}} with a parameter's name."
            )
        names.append(field)
    return names


def url_template_validate(template: str) -> str:
    template = (template or "").strip()
    if not template:
        raise ActionInvalid("url_template", "This field is required.")
    if len(template) > 2000:
        raise ActionInvalid("url_template", "At most 2000 characters.")
    if any(ord(character) < 33 or ord(character) == 127 for character in template) or "\\" in template:
        raise ActionInvalid("url_template", "The URL contains spaces, control characters or back-slashes.")
    names = placeholders(template)
    sample = template
    for name in names:
        sample = sample.replace("{" + name + "}", "x")
    try:
        parts = urlsplit(sample)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        raise ActionInvalid("url_template", f"The URL cannot be parsed ({error}).") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ActionInvalid("url_template", "Only http and https URLs can be called.")
    if not parts.hostname:
        raise ActionInvalid("url_template", "The URL has no host.")
    if "@" in parts.netloc:
        raise ActionInvalid(
            "url_template", "URLs with user names or passwords are not allowed; use a header."
        )
    if parts.fragment or "#" in template:
        raise ActionInvalid("url_template", "The URL may not have a #fragment.")
    authority = urlsplit(template.replace("{", "%7B").replace("}", "%7D")).netloc
    if "%7B" in authority:
        raise ActionInvalid(
            "url_template", "Placeholders may only appear in the path and query, not in the scheme or host."
        )
    try:  # the fetcher's own rules, now (they run again, after DNS, at every call)
        fetcher.url_check(sample)
    except fetcher.UrlNotAllowed as error:
        raise ActionInvalid("url_template", f"This URL cannot be called: {error.reason}.") from None
    except fetcher.FetchFailed:
        pass  # the name does not resolve from here right now; every call checks it again
    return template


def parameters_validate(schema) -> dict:
    if schema is None or schema == "" or schema == {}:
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        raise ActionInvalid("parameters", "parameters must be a JSON Schema object.")
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise ActionInvalid("parameters", f"The schema is longer than {MAX_SCHEMA_CHARS} characters.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        path = "/".join(str(part) for part in error.path)
        where = f" (at {path})" if path else ""
        raise ActionInvalid("parameters", f"Not a valid JSON Schema{where}: {error.message}") from None
    if schema.get("type") != "object":
        raise ActionInvalid(
            "parameters", 'The schema must describe an object: {"type": "object", "properties": {…}}.'
        )
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ActionInvalid("parameters", "properties must be an object.")
    return schema


def template_against_schema(template: str, schema: dict) -> None:
    """Every placeholder is a property the schema requires."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    for name in placeholders(template):
        if name not in properties:
            raise ActionInvalid("url_template", f"{{{name}}} is not a property of parameters.")
        if name not in required:
            raise ActionInvalid(
                "url_template", f"{{{name}}} is in the URL, so parameters must list it in required."
            )


def headers_validate(headers) -> dict[str, str | None]:
    """Header name → value (None removes it on a partial update)."""
    if headers in (None, ""):
        return {}
    if not isinstance(headers, dict):
        raise ActionInvalid("headers", "headers must be an object of header name → value.")
    if len(headers) > MAX_HEADERS:
        raise ActionInvalid("headers", f"At most {MAX_HEADERS} headers.")
    cleaned: dict[str, str | None] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME_PATTERN.match(name):
            raise ActionInvalid("headers", f"{str(name)[:100]!r} is not a valid header name.")
        if name.lower() in FORBIDDEN_HEADERS or name.lower().startswith("x-supportai-"):
            raise ActionInvalid("headers", f"{name} is set by the server and cannot be configured.")
        if value is not None:
            if not isinstance(value, str):
                raise ActionInvalid("headers", f"The value of {name} must be a string.")
            if len(value) > MAX_HEADER_VALUE or any(
                ord(c) < 32 and c != "\t" or ord(c) == 127 for c in value
            ):
                raise ActionInvalid(
                    "headers",
                    f"The value of {name} must be one line of at most {MAX_HEADER_VALUE} characters.",
                )
        cleaned[name] = value
    return cleaned


def headers_encrypt(headers: dict[str, str]) -> dict[str, str]:
    return {name: encrypt(value, purpose=HEADER_PURPOSE) for name, value in headers.items()}


def headers_merge(stored: dict[str, str], changes: dict[str, str | None]) -> dict[str, str]:
    """Stored (encrypted) headers with `changes` applied: a value sets, None removes.

    Names compare case-insensitively (HTTP header names do).
    """
    merged = dict(stored or {})
    for name, value in changes.items():
        for existing in [key for key in merged if key.lower() == name.lower()]:
            del merged[existing]
        if value is not None:
            merged[name] = encrypt(value, purpose=HEADER_PURPOSE)
    return merged


def headers_decrypt(stored: dict[str, str]) -> dict[str, str]:
    """Plain header values for one call (a value that no longer decrypts is left out)."""
    plain = {}
    for name, token in (stored or {}).items():
        value = decrypt(token, purpose=HEADER_PURPOSE) if isinstance(token, str) else None
        if value is not None:
            plain[name] = value
    return plain


def url_fill(template: str, arguments: dict) -> tuple[str, dict]:
    """(URL with its placeholders filled, URL-encoded; the arguments not used in it)."""
    rest = dict(arguments)
    url = template
    for name in dict.fromkeys(placeholders(template)):
        if name not in arguments:
            raise ActionInvalid(name, f"'{name}' is required")
        value = arguments[name]
        text = json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else str(value)
        if text.strip(".") == "":  # "", "." and ".." would change the path, not fill it
            raise ActionInvalid(name, f"'{name}' may not be empty, '.' or '..'")
        url = url.replace("{" + name + "}", quote(text, safe=""))
        rest.pop(name, None)
    return url, rest


def openapi_operation_import(document, *, path: str = "", method: str = "", base_url: str = "") -> dict:
    """Prefilled action fields from an OpenAPI 3 operation.

    `document` is either a whole OpenAPI 3 document (then `path` and `method` pick the
    operation, or it must have exactly one) or a single operation object (then `path` and
    `base_url` say where it lives). Path and query parameters become `parameters`
    properties; a JSON request body's object schema is merged in.
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            raise ActionInvalid("document", "Paste the operation as JSON.") from None
    if not isinstance(document, dict):
        raise ActionInvalid("document", "Paste an OpenAPI 3 document or one operation object.")
    method = (method or "").upper()
    operation = document
    if "paths" in document:
        if not isinstance(document["paths"], dict):
            raise ActionInvalid("document", "paths must be an object.")
        candidates = []
        for route, item in document["paths"].items():
            if not isinstance(item, dict):
                continue
            for verb, op in item.items():
                if verb.upper() in ("GET", "POST", "PUT", "PATCH", "DELETE") and isinstance(op, dict):
                    candidates.append((route, verb.upper(), op))
        if path or method:
            candidates = [
                c for c in candidates if (not path or c[0] == path) and (not method or c[1] == method)
            ]
        if len(candidates) != 1:
            raise ActionInvalid(
                "path", f"Found {len(candidates)} operations; give path and method to choose one."
            )
        path, method, operation = candidates[0]
        servers = document.get("servers") or []
        if not base_url and servers and isinstance(servers[0], dict):
            base_url = str(servers[0].get("url") or "")
    method = method or "GET"
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise ActionInvalid("method", f"{method} is not one of GET, POST, PUT, PATCH, DELETE.")
    properties: dict = {}
    required: list[str] = []
    for parameter in operation.get("parameters") or []:
        if not isinstance(parameter, dict) or parameter.get("in") not in ("path", "query"):
            continue
        name = str(parameter.get("name") or "")
        if not PLACEHOLDER_PATTERN.match(name):
            continue
        schema = dict(parameter.get("schema") or {"type": "string"})
        if parameter.get("description") and "description" not in schema:
            schema["description"] = str(parameter["description"])
        properties[name] = schema
        if parameter.get("required") or parameter.get("in") == "path":
            required.append(name)
    body = (((operation.get("requestBody") or {}).get("content") or {}).get("application/json") or {}).get(
        "schema"
    )
    if isinstance(body, dict) and body.get("type") == "object":
        for name, schema in (body.get("properties") or {}).items():
            properties.setdefault(name, schema)
        required += [name for name in body.get("required") or [] if name not in required]
    # Query parameters are not in the template: a GET/DELETE sends the arguments the URL does
    # not use as its query string, other methods as the JSON body.
    url = base_url.rstrip("/") + path
    summary = str(operation.get("summary") or "").strip()
    description = str(operation.get("description") or "").strip() or summary
    name_source = str(operation.get("operationId") or summary or f"{method.lower()}_{path}")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", name_source).strip("_-")[:64]
    if not name or not name[0].isalpha():
        name = ("action_" + name)[:64]
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {
        "name": name,
        "description": description[:MAX_DESCRIPTION],
        "method": method,
        "url_template": url,
        "parameters": schema,
    }
