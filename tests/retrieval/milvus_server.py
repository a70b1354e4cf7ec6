"""A Milvus server on a loopback TCP port for the tests: Milvus Lite's engine behind its own gRPC servicer (what
``milvus-lite server`` runs), in this separate process, with token authentication in front of it.

    python milvus_server.py DATA_DIR TOKEN

Binds 127.0.0.1 on a free port, prints ``PORT <n>``, and serves until its stdin closes (the test's end).
Milvus Lite's server checks no credentials, so an interceptor does what a Milvus server with
``authorizationEnabled`` does: a call whose ``authorization`` header (pymilvus sends base64 of the token)
is not the token fails with UNAUTHENTICATED. And its DescribeIndex always says "Finished"; here it first
waits for the engine's background index builds, so that, as on a Milvus server, "Finished" means built.
"""

from __future__ import annotations

import base64
import contextlib
import sys
from concurrent import futures

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc


class TokenCheck(grpc.ServerInterceptor):
    """Refuse every call that does not carry the token."""

    def __init__(self, token: str) -> None:
        self.expected = base64.b64encode(token.encode()).decode()

        def refuse(request, context):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "auth check failure, please check the token")

        self.refusal = grpc.unary_unary_rpc_method_handler(refuse)

    def intercept_service(self, continuation, handler_call_details):
        sent = dict(handler_call_details.invocation_metadata or ()).get("authorization")
        return continuation(handler_call_details) if sent == self.expected else self.refusal


class IndexProgressServicer(MilvusServicer):
    """Milvus Lite's servicer whose index description is true: it answers once the segment indexes are built."""

    def DescribeIndex(self, request, context):  # noqa: N802 - the gRPC method name
        with contextlib.suppress(Exception):  # no such collection: DescribeIndex says so below
            self._get_collection(request, context)._wait_for_bg(60)
        return super().DescribeIndex(request, context)


def main() -> None:
    data_dir, token = sys.argv[1], sys.argv[2]
    db = MilvusLite(data_dir)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        interceptors=[TokenCheck(token)],
        options=[("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)],
    )
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(IndexProgressServicer(db), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()  # until the test closes the pipe (or dies)
    server.stop(grace=1)
    db.close()


if __name__ == "__main__":
    main()
