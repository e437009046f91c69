"""The reference tools, resources and prompts the MCP conformance suite's server
scenarios call (test_simple_text, test://static-text, test_simple_prompt, the
input-required tools, ...), written for these tests with the Python SDK's MCPServer:
the suite ships none. It speaks 2026-07-28 and the handshake revisions, so the suite
can run against it directly (to check the fixture) and through an mcp-server named
endpoint in front of it (to check the gateway).

    python3 reference_server.py stdio
    python3 reference_server.py http PORT     # Streamable HTTP at /mcp

A tool that needs its client (sampling, elicitation) asks in the way the caller's
revision allows: an input-required result at 2026-07-28, a request on the call's
stream before it.
"""

import asyncio
import json
import sys
from typing import Annotated, Any

from pydantic import Field

from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import (
    AudioContent,
    CallToolResult,
    CreateMessageRequest,
    CreateMessageRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    EmbeddedResource,
    EmptyResult,
    ImageContent,
    InputRequiredResult,
    ListRootsRequest,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)
from mcp_types import SetLevelRequestParams, SubscribeRequestParams, UnsubscribeRequestParams
from mcp_types.jsonrpc import MISSING_REQUIRED_CLIENT_CAPABILITY

MODERN = "2026-07-28"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}

server = MCPServer("conformance-reference", version="1.0.0")


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


def elicit(message: str, schema: dict[str, Any]) -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def sample(prompt: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=text(prompt))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def answer(ctx: Context, key: str) -> Any:
    """The caller's response to input request `key`, if it gave one."""
    return (ctx.input_responses or {}).get(key)


async def ask(ctx: Context, key: str, request: ElicitRequest | CreateMessageRequest) -> Any:
    """Asks the client: an input-required result at 2026-07-28 (returned as is), a request
    on the call's stream at older revisions (its answer returned)."""
    given = answer(ctx, key)
    if given is not None:
        return given
    if ctx.protocol_version == MODERN:
        return InputRequiredResult(input_requests={key: request})
    if isinstance(request, ElicitRequest):
        params = request.params
        return await ctx.session.elicit_form(
            params.message, requested_schema=params.requested_schema, related_request_id=ctx.request_id
        )
    params = request.params
    return await ctx.session.create_message(
        messages=params.messages, max_tokens=params.max_tokens, related_request_id=ctx.request_id
    )


def dump(result: Any) -> str:
    return json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True))


# Content of each kind.


@server.tool(description="Returns a simple text response")
def test_simple_text() -> str:
    return "This is a simple text response for testing."


@server.tool(description="Returns an image")
def test_image_content() -> list[ImageContent]:
    return [ImageContent(type="image", data=PNG, mime_type="image/png")]


@server.tool(description="Returns audio")
def test_audio_content() -> list[AudioContent]:
    return [AudioContent(type="audio", data=WAV, mime_type="audio/wav")]


EMBEDDED = TextResourceContents(
    uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
)


@server.tool(description="Returns an embedded resource")
def test_embedded_resource() -> list[EmbeddedResource]:
    return [EmbeddedResource(type="resource", resource=EMBEDDED)]


@server.tool(description="Returns text, an image and a resource")
def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
    data = TextResourceContents(
        uri="test://mixed-content-resource", mime_type="application/json", text='{"test":"data","value":123}'
    )
    return [
        text("Multiple content types test:"),
        ImageContent(type="image", data=PNG, mime_type="image/png"),
        EmbeddedResource(type="resource", resource=data),
    ]


@server.tool(description="Always fails, as a tool error")
def test_error_handling() -> CallToolResult:
    return CallToolResult(content=[text("This tool intentionally returns an error for testing")], is_error=True)


# Notifications during a call.


@server.tool(description="Reports progress three times")
async def test_tool_with_progress(ctx: Context) -> str:
    for step in (0, 50, 100):
        await ctx.report_progress(step, 100, f"Completed step {step} of 100")
        await asyncio.sleep(0.05)
    return "Progress tool completed"


@server.tool(description="Logs three messages")
async def test_tool_with_logging(ctx: Context) -> str:
    for message in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(message)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@server.tool(description="Logs only when the request asks for logs")
async def test_logging_tool(ctx: Context) -> str:
    await ctx.info("Diagnostic trace logging activated")
    return "Logging evaluated"


# Asking the client.


@server.tool(description="Asks the client to sample a message")
async def test_sampling(prompt: str, ctx: Context) -> Any:
    sampled = await ask(ctx, "sampling", sample(prompt, 100))
    if isinstance(sampled, InputRequiredResult):
        return sampled
    return f"LLM response: {sampled.content.text}"


@server.tool(description="Asks the user for a username and an email")
async def test_elicitation(message: str, ctx: Context) -> Any:
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    answered = await ask(ctx, "elicitation", elicit(message, schema))
    if isinstance(answered, InputRequiredResult):
        return answered
    return f"User response: action={answered.action}, content={json.dumps(answered.content)}"


@server.tool(description="Asks for fields that have defaults")
async def test_elicitation_sep1034_defaults(ctx: Context) -> Any:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": True},
        },
        "required": [],
    }
    message = "Please review and update the form fields with defaults"
    answered = await ask(ctx, "defaults", elicit(message, schema))
    if isinstance(answered, InputRequiredResult):
        return answered
    return f"Elicitation completed: action={answered.action}, content={json.dumps(answered.content)}"


@server.tool(description="Asks for enum fields of every kind")
async def test_elicitation_sep1330_enums(ctx: Context) -> Any:
    def titled(*pairs: tuple[str, str]) -> list[dict[str, str]]:
        return [{"const": const, "title": title} for const, title in pairs]

    options = ["option1", "option2", "option3"]
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": options},
            "titledSingle": {
                "type": "string",
                "oneOf": titled(("value1", "First Option"), ("value2", "Second Option"), ("value3", "Third Option")),
            },
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": options}},
            "titledMulti": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "anyOf": titled(("value1", "First Choice"), ("value2", "Second Choice"), ("value3", "Third Choice"))
                },
            },
        },
        "required": [],
    }
    answered = await ask(ctx, "enums", elicit("Please select options from the enum fields", schema))
    if isinstance(answered, InputRequiredResult):
        return answered
    return f"Elicitation completed: action={answered.action}, content={json.dumps(answered.content)}"


@server.tool(description="Needs the sampling capability")
def test_missing_capability(ctx: Context) -> str:
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        raise MCPError(
            MISSING_REQUIRED_CLIENT_CAPABILITY,
            "test_missing_capability needs the sampling capability",
            {"requiredCapabilities": {"sampling": {}}},
        )
    return "Success"


@server.tool(description="Never asks its client on the response stream")
def test_streaming_elicitation() -> str:
    return "Streaming complete"


# For the tasks scenarios (the gateway runs them as tasks: jobs on Kafka).


@server.tool(description="Greets, at once")
def greet(name: str) -> str:
    return f"Hello, {name}!"


@server.tool(description="Computes for a number of seconds")
async def slow_compute(seconds: float, label: str = "") -> str:
    await asyncio.sleep(seconds)
    return f"computed {label} in {seconds} s"


@server.tool(description="Fails as a tool after a second")
async def failing_job() -> CallToolResult:
    await asyncio.sleep(1)
    return CallToolResult(content=[text("the job failed on purpose")], is_error=True)


@server.tool(description="Fails with a protocol error")
def protocol_error_job() -> str:
    raise MCPError(-32603, "protocol_error_job: an internal error on purpose")


# Input-required results (2026-07-28).


@server.tool(description="Asks for a name")
def test_input_required_result_elicitation(ctx: Context) -> Any:
    named = answer(ctx, "user_name")
    if named is None or named.content is None:
        return InputRequiredResult(input_requests={"user_name": elicit("What is your name?", NAME_SCHEMA)})
    return f"Hello, {named.content.get('name')}!"


@server.tool(description="Asks for a sampled answer")
def test_input_required_result_sampling(ctx: Context) -> Any:
    sampled = answer(ctx, "capital_question")
    if sampled is None:
        asked = sample("What is the capital of France?", 100)
        return InputRequiredResult(input_requests={"capital_question": asked})
    return f"Sampled: {sampled.content.text}"


@server.tool(description="Asks for the client's roots")
def test_input_required_result_list_roots(ctx: Context) -> Any:
    roots = answer(ctx, "client_roots")
    if roots is None:
        return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})
    return f"Roots: {', '.join(str(root.uri) for root in roots.roots)}"


@server.tool(description="Asks for a confirmation and keeps state")
def test_input_required_result_request_state(ctx: Context) -> Any:
    confirmed = answer(ctx, "confirm")
    if confirmed is None or ctx.request_state != "awaiting-confirm":
        schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
        return InputRequiredResult(
            input_requests={"confirm": elicit("Please confirm", schema)}, request_state="awaiting-confirm"
        )
    return "state-ok: confirmed"


@server.tool(description="Asks for three inputs at once")
def test_input_required_result_multiple_inputs(ctx: Context) -> Any:
    keys = ("user_name", "greeting", "client_roots")
    if any(answer(ctx, key) is None for key in keys):
        return InputRequiredResult(
            input_requests={
                "user_name": elicit("What is your name?", NAME_SCHEMA),
                "greeting": sample("Generate a greeting", 50),
                "client_roots": ListRootsRequest(),
            },
            request_state="awaiting-three",
        )
    return f"Hello, {answer(ctx, 'user_name').content.get('name')}: {answer(ctx, 'greeting').content.text}"


@server.tool(description="Asks in two rounds")
def test_input_required_result_multi_round(ctx: Context) -> Any:
    if ctx.request_state == "round-2" and answer(ctx, "step2") is not None:
        return f"Favorite color: {answer(ctx, 'step2').content.get('color')}"
    if ctx.request_state == "round-1" and answer(ctx, "step1") is not None:
        schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
        return InputRequiredResult(
            input_requests={"step2": elicit("Step 2: What is your favorite color?", schema)}, request_state="round-2"
        )
    return InputRequiredResult(
        input_requests={"step1": elicit("Step 1: What is your name?", NAME_SCHEMA)}, request_state="round-1"
    )


@server.tool(description="Asks for a confirmation, with state that must come back unchanged")
def test_input_required_result_tampered_state(ctx: Context) -> Any:
    if ctx.request_state == "untampered" and answer(ctx, "confirm") is not None:
        return "State verified"
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    return InputRequiredResult(input_requests={"confirm": elicit("Please confirm", schema)}, request_state="untampered")


@server.tool(description="Asks only for what the client declared")
def test_input_required_result_capabilities(ctx: Context) -> Any:
    capabilities = ctx.client_capabilities
    asked: dict[str, Any] = {}
    if capabilities is not None and capabilities.sampling is not None:
        asked["sampled"] = sample("Say something", 20)
    if capabilities is not None and capabilities.elicitation is not None:
        asked["elicited"] = elicit("What is your name?", NAME_SCHEMA)
    if not asked or all(answer(ctx, key) is not None for key in asked):
        return "Capabilities respected"
    return InputRequiredResult(input_requests=asked)


@server.tool(description="Header-routed: a client mirrors its region into Mcp-Param-Region")
def test_x_mcp_header(
    region: Annotated[str, Field(description="Where to route", json_schema_extra={"x-mcp-header": "Region"})] = "none",
) -> str:
    return f"routed to {region}"


@server.tool(description="Tool with JSON Schema 2020-12 features")
def json_schema_2020_12_tool(name: str = "") -> str:
    return "JSON Schema 2020-12 tool"


server._tool_manager._tools["json_schema_2020_12_tool"].parameters = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


# Resources.


@server.resource("test://static-text", name="static-text", description="Static text", mime_type="text/plain")
def static_text() -> str:
    return "This is the content of the static text resource."


@server.resource("test://static-binary", name="static-binary", description="A PNG", mime_type="image/png")
def static_binary() -> bytes:
    import base64

    return base64.b64decode(PNG)


@server.resource("test://watched-resource", name="watched-resource", description="Watchable", mime_type="text/plain")
def watched_resource() -> str:
    return "Watched resource content"


@server.resource("test://template/{id}/data", name="template", description="Data by id", mime_type="application/json")
def template(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


async def accepted(ctx: Any, params: Any) -> EmptyResult:
    return EmptyResult()


for method, params in (
    ("resources/subscribe", SubscribeRequestParams),
    ("resources/unsubscribe", UnsubscribeRequestParams),
    ("logging/setLevel", SetLevelRequestParams),
):
    server._lowlevel_server.add_request_handler(method, params, accepted)


# Prompts and completion.


@server.prompt(description="A simple prompt")
def test_simple_prompt() -> str:
    return "This is a simple prompt for testing."


@server.prompt(description="A prompt with two arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
    return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"


@server.prompt(description="A prompt with an embedded resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[dict[str, Any]]:
    embedded = {"uri": resourceUri, "mimeType": "text/plain", "text": "Embedded resource content for testing."}
    return [
        {"role": "user", "content": {"type": "resource", "resource": embedded}},
        {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}},
    ]


@server.prompt(description="A prompt with an image")
def test_prompt_with_image() -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": {"type": "image", "data": PNG, "mimeType": "image/png"}},
        {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}},
    ]


@server.prompt(description="A prompt that asks for its context first")
def test_input_required_result_prompt(ctx: Context) -> Any:
    given = answer(ctx, "user_context")
    if given is None:
        schema = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
        asked = elicit("What context should the prompt use?", schema)
        return InputRequiredResult(input_requests={"user_context": asked})
    return f"Prompt with context: {given.content.get('context')}"


@server.completion()
async def complete(ref: Any, argument: Any, context: Any) -> None:
    return None


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")
