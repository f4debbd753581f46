#!/usr/bin/env python3
"""Python's grpcio (Debian's python3-grpcio, what tritonclient.grpc is built on) through
the gateway's TLS and mTLS: ssl_channel_credentials with the CA that signed the
gateway's certificate, and with a client certificate. Keys and certificates are made
here with openssl, never committed. Requests are encoded by hand (no generated stubs)."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hostile"))
import support as S  # noqa: E402  (the hostile suite's process and protobuf helpers)

SERVICE = "/inference.GRPCInferenceService/"


class Pki:
    """A CA and, signed by it, a server certificate for 127.0.0.1/localhost and a client
    certificate (CN=python-job)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="infergate-grpcio-pki-")
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-days", "2", "-subj", "/CN=grpcio-ca", "-keyout",
                  self.path("ca.key"), "-out", self.path("ca.crt"))
        self._leaf("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        self._leaf("client", "/CN=python-job", "extendedKeyUsage=clientAuth")

    def path(self, name):
        return os.path.join(self.dir, name)

    def read(self, name):
        with open(self.path(name), "rb") as f:
            return f.read()

    def _run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def _leaf(self, name, subject, extension):
        with open(self.path(name + ".ext"), "w") as f:
            f.write(extension + "\n")
        self._run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-subj", subject, "-keyout", self.path(name + ".key"), "-out",
                  self.path(name + ".csr"))
        self._run("x509", "-req", "-in", self.path(name + ".csr"), "-CA", self.path("ca.crt"),
                  "-CAkey", self.path("ca.key"), "-CAcreateserial", "-days", "2", "-extfile",
                  self.path(name + ".ext"), "-out", self.path(name + ".crt"))

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def call(channel, method, request, timeout=10):
    rpc = channel.unary_unary(SERVICE + method, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
    return rpc(request, timeout=timeout)


def secure_channel(port, pki, client_cert=False):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.read("ca.crt"),
        private_key=pki.read("client.key") if client_cert else None,
        certificate_chain=pki.read("client.crt") if client_cert else None)
    return grpc.secure_channel("127.0.0.1:%d" % port, credentials,
                               options=[("grpc.ssl_target_name_override", "localhost"),
                                        ("grpc.max_receive_message_length", 1 << 30)])


class GrpcioTls(unittest.TestCase):
    def setUp(self):
        self.pki = Pki()
        self.sim = S.Sim("sim-a")
        self.gateways = []

    def tearDown(self):
        for g in self.gateways:
            g.stop()
        self.sim.stop()
        self.pki.close()

    def gateway(self, extra=""):
        g = S.Gateway([self.sim], "frontend:\n  tls:\n    cert: %s\n    key: %s\n%s" %
                      (self.pki.path("server.crt"), self.pki.path("server.key"), extra))
        self.gateways.append(g)
        return g

    def test_tls(self):
        gw = self.gateway()
        with secure_channel(gw.port, self.pki) as channel:
            self.assertEqual(call(channel, "ServerLive", b""), b"\x08\x01")  # live: true
            request = S.infer_request(nbytes=1 << 20, seed=7)
            answer = call(channel, "ModelInfer", request)
            self.assertEqual(S.served_by(answer), "sim-a")
            fields = S.pb_fields(answer)
            raw = [value for field, _, value in fields if field == 6]
            self.assertEqual(raw, [S.pb_fields(request)[-1][2]])  # the 1 MiB came back whole

    def test_mtls(self):
        gw = self.gateway("    client_ca: %s\n    require_client_cert: true\n" %
                          self.pki.path("ca.crt"))
        with secure_channel(gw.port, self.pki, client_cert=True) as channel:
            self.assertEqual(call(channel, "ServerLive", b""), b"\x08\x01")
        with secure_channel(gw.port, self.pki) as channel:
            with self.assertRaises(grpc.RpcError) as refused:
                call(channel, "ServerLive", b"", timeout=5)
            self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertTrue(S.wait_until(lambda: gw.metric(
            'infergate_tls_handshake_failures_total{reason="no_client_certificate"}') >= 1, 5))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", required=True, help="the infergate binary")
    parser.add_argument("--sim", required=True, help="the infergate-sim binary")
    args, rest = parser.parse_known_args()
    S.BINARIES["gateway"] = os.path.abspath(args.gateway)
    S.BINARIES["sim"] = os.path.abspath(args.sim)
    program = unittest.main(module=__name__, argv=[sys.argv[0], "-v"] + rest, exit=False)
    return 0 if program.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
