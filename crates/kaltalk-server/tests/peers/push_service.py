"""A loopback Web Push service that plays the browser's side (RFC 8030 / 8291 / 8292).

KalTalk's tests and kaltalk-bench start it with the venv the test command makes
(scripts/push-venv.sh: http_ece, cryptography, PyJWT). It prints one JSON line,
{"url": "http://127.0.0.1:PORT"}, then serves:

  POST /subscriptions   a new subscription, as PushSubscription.toJSON() gives it: its own
                        P-256 key pair and 16-byte auth secret, like a browser makes
  POST /script          {"answers": [{"status": 429, "retry_after": "120"}, ...]}: the
                        answers to the next pushes, in order (201 once they run out)
  POST /push/<id>       a push: checked and decrypted, recorded, answered as scripted
  GET  /received        every push so far, as JSON

Each recorded push lists what it got wrong in "problems" (empty when everything is as the
RFCs ask): the VAPID JWT (ES256 against k=, aud the endpoint's origin, exp within 24 h, a
sub), the TTL, Content-Encoding, Urgency and Topic headers, and the aes128gcm payload,
which it decrypts with http_ece, as a browser would.
"""

import base64
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

URGENCIES = {"very-low", "low", "normal", "high"}
# RFC 8030 §5.4: at most 32 characters of the URL- and filename-safe base64 alphabet.
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Service:
    def __init__(self):
        self.lock = threading.Lock()
        self.subscriptions = {}
        self.answers = []
        self.received = []
        self.origin = None

    def subscribe(self):
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        with self.lock:
            sid = str(len(self.subscriptions) + 1)
            self.subscriptions[sid] = (key, auth)
        return {
            "endpoint": f"{self.origin}/push/{sid}",
            "expirationTime": None,
            "keys": {"p256dh": b64url(public), "auth": b64url(auth)},
        }

    def check_vapid(self, header, problems):
        """Checks `Authorization: vapid t=<jwt>, k=<key>`; returns the JWT's claims."""
        match = re.fullmatch(r"vapid t=([^,\s]+),\s*k=([^,\s]+)", header or "")
        if not match:
            problems.append(f"Authorization is not 'vapid t=…, k=…': {header!r}")
            return None
        token, k = match.groups()
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(k))
        except Exception as err:  # noqa: BLE001 - every failure is a finding
            problems.append(f"k= is not a P-256 point: {err}")
            return None
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except Exception as err:  # noqa: BLE001
            problems.append(f"the VAPID JWT does not verify: {err}")
            return None
        if claims["exp"] > time.time() + 24 * 3600:
            problems.append(f"exp is more than 24 hours away: {claims['exp']}")
        if not re.match(r"^(mailto:.+@.+|https://.+)$", str(claims["sub"])):
            problems.append(f"sub is neither mailto: nor https: {claims['sub']!r}")
        return {"claims": claims, "k": k}

    def push(self, sid, headers, body):
        problems = []
        record = {"subscription": sid, "at": time.time(), "headers": headers, "problems": problems}
        with self.lock:
            found = self.subscriptions.get(sid)
            answer = self.answers.pop(0) if self.answers else {"status": 201}
        if found is None:
            problems.append(f"no subscription {sid}")
        record["vapid"] = self.check_vapid(headers.get("authorization"), problems)
        ttl = headers.get("ttl")
        if ttl is None or not ttl.isdigit():
            problems.append(f"TTL is missing or not a number: {ttl!r}")
        if headers.get("content-encoding") != "aes128gcm":
            problems.append(f"Content-Encoding is {headers.get('content-encoding')!r}")
        urgency = headers.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            problems.append(f"Urgency {urgency!r} is not one of {sorted(URGENCIES)}")
        topic = headers.get("topic")
        if topic is not None and not TOPIC.match(topic):
            problems.append(f"Topic {topic!r} is not 1-32 URL-safe base64 characters")
        record["payload"] = None
        if found is not None and body:
            key, auth = found
            try:
                clear = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
                record["payload"] = json.loads(clear)
            except Exception as err:  # noqa: BLE001
                problems.append(f"the payload does not decrypt to JSON: {err}")
        record["status"] = answer["status"]
        with self.lock:
            self.received.append(record)
        return answer


SERVICE = Service()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/received":
            with SERVICE.lock:
                received = list(SERVICE.received)
            self.reply(200, received)
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        body = self.body()
        if self.path == "/subscriptions":
            self.reply(201, SERVICE.subscribe())
        elif self.path == "/script":
            with SERVICE.lock:
                SERVICE.answers.extend(json.loads(body)["answers"])
            self.reply(204)
        elif self.path.startswith("/push/"):
            headers = {name.lower(): value for name, value in self.headers.items()}
            answer = SERVICE.push(self.path[len("/push/"):], headers, body)
            extra = [("Retry-After", answer["retry_after"])] if "retry_after" in answer else []
            self.reply(answer["status"], None, extra)
        else:
            self.reply(404, {"error": "not found"})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    SERVICE.origin = f"http://127.0.0.1:{server.server_address[1]}"
    print(json.dumps({"url": SERVICE.origin}), flush=True)
    # Ends with its parent: the test closes stdin (or dies) and the service goes too.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
