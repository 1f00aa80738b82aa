"""JSON Schemas and the AsyncAPI 3 document, generated from the event models.

``ila schemas`` writes them under docs/events; a test fails when the checked-in copy is
stale, so the documents never drift from the code.
"""

from __future__ import annotations

import json
from typing import Any

from shared.bus import dlt_topic, topic_for
from shared.events.base import Envelope, registry
from shared.settings import SERVICES


def _dump(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def event_schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for ce_type, model in registry().items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://ila.example.eu/events/{ce_type}.json"
        schema["title"] = ce_type
        schemas[ce_type] = schema
    return schemas


def asyncapi(schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    envelope = Envelope.model_json_schema()
    envelope.pop("title", None)
    messages: dict[str, Any] = {}
    components_schemas: dict[str, Any] = {"Envelope": envelope}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service in SERVICES:
        channel_messages: dict[str, Any] = {}
        for ce_type, schema in schemas.items():
            model = registry()[ce_type]
            if model.topic != service:
                continue
            key = ce_type.replace(".", "_")
            components_schemas[key] = schema
            messages[key] = {
                "name": ce_type,
                "title": model.__name__,
                "summary": (model.__doc__ or "").strip().split("\n")[0],
                "contentType": "application/cloudevents+json",
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Envelope"},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"const": ce_type},
                                "data": {"$ref": f"#/components/schemas/{key}"},
                            },
                        },
                    ]
                },
            }
            channel_messages[key] = {"$ref": f"#/components/messages/{key}"}
        if not channel_messages:
            continue
        channels[service] = {
            "address": topic_for(service),
            "description": f"Events of the {service} service, keyed by aggregate id.",
            "messages": channel_messages,
        }
        channels[f"{service}_dlt"] = {
            "address": dlt_topic(service),
            "description": f"Messages the {service} consumer group gave up on, with the error.",
        }
        operations[f"publish_{service}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{service}"},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Individual Learning Accounts events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 (structured JSON) exchanged over Apache Kafka.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": components_schemas},
    }


def render_all() -> dict[str, str]:
    schemas = event_schemas()
    files = {f"schemas/{t}.json": _dump(s) for t, s in schemas.items()}
    files["schemas/envelope.json"] = _dump(Envelope.model_json_schema())
    files["asyncapi.json"] = _dump(asyncapi(schemas))
    return files
