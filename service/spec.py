"""``GET /spec``: the API described the way LibreTranslate's ``/spec`` describes its own.

LibreTranslate serves a Swagger 2.0 document in which each endpoint's fields are ``formData``
parameters; clients and tools written against it read that shape. :func:`libretranslate_spec`
derives it from the app's own OpenAPI 3 document (``/openapi.json``, shown by ``/docs``), so
the two never disagree: request bodies become form parameters (a file field a ``file``
parameter), path parameters keep their names, ``#/components/schemas`` become
``#/definitions``, and JSON Schema that Swagger 2.0 lacks is narrowed to what it has (a value
that may be null is ``x-nullable``; of several alternatives the first is described). Every
endpoint of the translation API also lists the ``{"error": ...}`` answers it may give.
"""

from __future__ import annotations

from typing import Any

SWAGGER_VERSION = "2.0"
LICENSE = {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "application/json")
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "what is wrong"}},
    "required": ["error"],
}
# The error answers of the translation API (README: HTTP API).
ERRORS = {
    "400": "invalid request: the message names the problem and any limit",
    "403": "a missing or wrong API key",
    "413": "the request body is too large",
    "503": "the queue is full (Retry-After says when to try again)",
    "504": "the request took longer than MT_REQUEST_TIMEOUT_S",
}
TRANSLATION_API = ("/translate", "/translate_file", "/detect")
# JSON Schema keywords Swagger 2.0 does not have.
_DROPPED = {"examples", "const", "contentMediaType", "$schema", "discriminator"}


def _schema(schema: Any) -> Any:
    """A JSON Schema (OpenAPI 3.1) as a Swagger 2.0 schema."""
    if isinstance(schema, list):
        return [_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$ref":
            out[key] = str(value).replace("#/components/schemas/", "#/definitions/")
        elif key in ("anyOf", "oneOf"):
            choices = [choice for choice in value if choice.get("type") != "null"]
            if len(choices) < len(value):
                out["x-nullable"] = True
            out.update(_schema(choices[0]) if choices else {})
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key not in _DROPPED:
            out[key] = _schema(value)
    return out


def _form_parameters(body: dict[str, Any], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``formData`` parameter per field of a request body."""
    content = body.get("content", {})
    media: dict[str, Any] = next((content[kind] for kind in FORM_TYPES if kind in content), {})
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    parameters = []
    for name, field in schema.get("properties", {}).items():
        converted = _schema(field)
        parameter = {"in": "formData", "name": name, "required": name in required}
        if converted.get("format") == "binary":
            parameter["type"] = "file"
        else:
            parameter["type"] = converted.get("type", "string")
            for key in ("description", "default", "enum", "items", "minimum", "maximum"):
                if key in converted:
                    parameter[key] = converted[key]
            if parameter["type"] == "object":
                parameter["type"] = "string"  # a form field is text (JSON)
        parameters.append(parameter)
    return parameters


def _operation(path: str, operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """One endpoint's operation in Swagger 2.0 form."""
    out: dict[str, Any] = {
        key: operation[key]
        for key in ("summary", "description", "operationId", "tags")
        if key in operation
    }
    parameters = [
        {
            "in": parameter["in"],
            "name": parameter["name"],
            "required": parameter.get("required", False),
            "type": _schema(parameter.get("schema", {})).get("type", "string"),
        }
        for parameter in operation.get("parameters", [])
    ]
    if "requestBody" in operation:
        content = operation["requestBody"].get("content", {})
        out["consumes"] = [kind for kind in FORM_TYPES if kind in content]
        parameters += _form_parameters(operation["requestBody"], schemas)
    if parameters:
        out["parameters"] = parameters
    out["produces"] = ["application/json"]
    responses: dict[str, Any] = {}
    for status, response in operation.get("responses", {}).items():
        converted = {"description": response.get("description", "")}
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema:
            converted["schema"] = _schema(schema)
        responses[status] = converted
    if path in TRANSLATION_API:
        for status, description in ERRORS.items():
            responses.setdefault(
                status, {"description": description, "schema": {"$ref": "#/definitions/Error"}}
            )
    out["responses"] = responses
    return out


def libretranslate_spec(openapi: dict[str, Any]) -> dict[str, Any]:
    """The Swagger 2.0 document of an app whose OpenAPI 3 document is ``openapi``."""
    schemas = openapi.get("components", {}).get("schemas", {})
    info = openapi.get("info", {})
    paths = {
        path: {method: _operation(path, operation, schemas) for method, operation in item.items()}
        for path, item in openapi.get("paths", {}).items()
    }
    return {
        "swagger": SWAGGER_VERSION,
        "info": {
            "title": info.get("title", ""),
            "version": info.get("version", ""),
            "description": info.get("description", ""),
            "license": LICENSE,
        },
        "basePath": "/",
        "paths": paths,
        "definitions": {
            "Error": ERROR_SCHEMA,
            **{name: _schema(schema) for name, schema in schemas.items()},
        },
    }
