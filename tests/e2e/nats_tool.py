#!/usr/bin/env python3
"""NATS JetStream from outside the service, for tests/e2e_messaging.rs: an independent
producer and an inspector of streams and consumers, with the official Python client (PyPI
`nats-py`, installed by .ci/e2e-setup).

    nats_tool.py --url URL publish SUBJECT ID PAYLOAD [--header NAME=VALUE]...
        publishes to JetStream with `Nats-Msg-Id: ID`, waits for the stream's ack and
        prints it as JSON: {"stream", "seq", "duplicate"}
    nats_tool.py --url URL messages STREAM
        prints every message still in STREAM as JSON lines:
        {"seq", "subject", "headers": {name: value}, "data"}
    nats_tool.py --url URL consumer STREAM DURABLE
        prints the durable consumer's state as JSON: {"num_pending", "num_ack_pending",
        "num_redelivered", "delivered", "ack_floor"} (stream sequences) and "deliveries"
        (every delivery it made, redeliveries included)
    nats_tool.py --url URL delete STREAM...
        deletes the streams (missing ones are fine)

Exits non-zero with the error on stderr when the server refuses or cannot be reached.
"""
import argparse
import asyncio
import json
import sys

import nats
from nats.js.errors import NotFoundError


async def publish(js, args):
    headers = {"Nats-Msg-Id": args.id}
    for item in args.header or []:
        name, _, value = item.partition("=")
        headers[name] = value
    ack = await js.publish(args.subject, args.payload.encode(), headers=headers, timeout=10)
    print(json.dumps({"stream": ack.stream, "seq": ack.seq, "duplicate": bool(ack.duplicate)}))


async def messages(js, args):
    info = await js.stream_info(args.stream)
    state = info.state
    if state.messages == 0:
        return
    for seq in range(state.first_seq, state.last_seq + 1):
        try:
            msg = await js.get_msg(args.stream, seq)
        except NotFoundError:
            continue  # deleted (redriven)
        headers = {k: v for k, v in (msg.headers or {}).items()}
        print(
            json.dumps(
                {
                    "seq": msg.seq,
                    "subject": msg.subject,
                    "headers": headers,
                    "data": (msg.data or b"").decode("utf-8", "replace"),
                }
            )
        )


async def consumer(js, args):
    info = await js.consumer_info(args.stream, args.durable)
    print(
        json.dumps(
            {
                "num_pending": info.num_pending,
                "num_ack_pending": info.num_ack_pending,
                "num_redelivered": info.num_redelivered,
                "delivered": info.delivered.stream_seq,
                "deliveries": info.delivered.consumer_seq,
                "ack_floor": info.ack_floor.stream_seq,
            }
        )
    )


async def delete(js, args):
    for stream in args.streams:
        try:
            await js.delete_stream(stream)
        except NotFoundError:
            pass


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("publish")
    p.add_argument("subject")
    p.add_argument("id")
    p.add_argument("payload")
    p.add_argument("--header", action="append")
    p = sub.add_parser("messages")
    p.add_argument("stream")
    p = sub.add_parser("consumer")
    p.add_argument("stream")
    p.add_argument("durable")
    p = sub.add_parser("delete")
    p.add_argument("streams", nargs="+")
    args = parser.parse_args()

    nc = await nats.connect(args.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream()
        await {"publish": publish, "messages": messages, "consumer": consumer, "delete": delete}[
            args.command
        ](js, args)
    finally:
        await nc.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - the test prints it
        print(f"nats_tool.py: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
