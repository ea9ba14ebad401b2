# SPDX-License-Identifier: LGPL-2.1-or-later
"""A local stand-in for Amazon Kinesis Data Firehose's PutRecordBatch, for the uploader's tests.

It checks every request's SigV4 signature with botocore (an implementation independent of ours),
checks PutRecordBatch's limits, appends each accepted record to --records and each request to
--requests (JSON lines, written before answering). It listens on 127.0.0.1 (--port 0: any free
port), prints the port on a line of its own, and serves until it is killed.

And it misbehaves on request, as Firehose and the networks before it do:
  --script F1,F2,...   the first requests meet these faults, one each, in order (then all is well):
     ok            answered normally
     500           HTTP 500 InternalFailure
     429           HTTP 429 TooManyRequestsException
     throttle      HTTP 400 ThrottlingException
     partial       HTTP 200, every other record failed with ServiceUnavailableException
     garbage       HTTP 200 with a body that is not PutRecordBatch's answer (nothing kept)
     reset         the connection reset (RST) once the request was read (nothing kept)
     hang          no answer for --hang-seconds, then the connection closed (nothing kept)
     huge          HTTP 200 with a 4 MiB body (nothing kept)
     echo          HTTP 403 AccessDeniedException whose message echoes the request's headers
     expired       HTTP 400 ExpiredTokenException
     unrecognized  HTTP 400 UnrecognizedClientException
  --fail-records N         the first N records received fail with ServiceUnavailableException
  --reject-marker TEXT     records holding TEXT fail for good (per-record InvalidArgumentException)
  --reject-request-marker TEXT  a request holding such a record is refused whole (HTTP 400
                           InvalidArgumentException), as Firehose refuses an oversized one
  --expired-token TOKEN    requests signed with this session token get ExpiredTokenException
  --answer-delay SECONDS   wait before each answer (a slow service: time to kill a client)
  --read-delay SECONDS     wait this long per 64 KiB of body read (a slow uplink)
"""

import argparse
import base64
import binascii
import datetime
import hmac
import json
import socket
import struct
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

TARGET = 'Firehose_20150804.PutRecordBatch'
CONTENT_TYPE = 'application/x-amz-json-1.1'
MAX_RECORDS = 500
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
MAX_CLOCK_SKEW = datetime.timedelta(minutes=5)


class Rejection(Exception):
    def __init__(self, status, error_type, message):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


FAULTS = ('ok', '500', '429', 'throttle', 'partial', 'garbage', 'reset', 'hang', 'huge', 'echo', 'expired',
          'unrecognized')
# Faults answered with an error, before the request is looked at: status, __type.
ERROR_FAULTS = {'500': (500, 'InternalFailure'), '429': (429, 'TooManyRequestsException'),
                'throttle': (400, 'ThrottlingException'), 'expired': (400, 'ExpiredTokenException'),
                'unrecognized': (400, 'UnrecognizedClientException')}


class Firehose:
    def __init__(self, options):
        self.options = options
        self.lock = threading.Lock()
        self.failures_left = options.fail_records
        self.script = [fault for fault in options.script.split(',') if fault] if options.script else []
        unknown = set(self.script) - set(FAULTS)
        if unknown:
            raise SystemExit('unknown faults: ' + ', '.join(sorted(unknown)))
        self.request_count = 0
        self.records = open(options.records, 'a', encoding='utf-8')
        self.requests = open(options.requests, 'a', encoding='utf-8')

    def check_signature(self, method, path, headers, body):
        def reject(message):
            raise Rejection(self.options.signature_error_status, 'InvalidSignatureException', message)

        algorithm, _, fields_text = headers.get('Authorization', '').partition(' ')
        if algorithm != 'AWS4-HMAC-SHA256':
            reject('missing or unknown Authorization algorithm')
        fields = dict(field.strip().split('=', 1) for field in fields_text.split(',') if '=' in field)
        scope = fields.get('Credential', '').split('/')
        if len(scope) != 5 or scope[4] != 'aws4_request':
            reject('malformed credential scope')
        access_key, date, region, service, _ = scope
        if access_key != self.options.access_key:
            reject('unknown access key ' + access_key)
        if region != self.options.region or service != 'firehose':
            reject(f'credential scope names {region}/{service}, expected {self.options.region}/firehose')
        amz_date = headers.get('X-Amz-Date', '')
        try:
            signed_at = datetime.datetime.strptime(amz_date, '%Y%m%dT%H%M%SZ')
        except ValueError:
            reject('missing or malformed X-Amz-Date')
        if amz_date[:8] != date:
            reject('X-Amz-Date is not on the credential scope\'s date')
        if abs(datetime.datetime.utcnow() - signed_at) > MAX_CLOCK_SKEW:
            reject('Signature expired')
        if self.options.expired_token and headers.get('X-Amz-Security-Token') == self.options.expired_token:
            raise Rejection(400, 'ExpiredTokenException', 'The security token included in the request is expired')
        signed_headers = fields.get('SignedHeaders', '').split(';')
        required = {'host', 'x-amz-date', 'content-type', 'x-amz-target'}
        if self.options.session_token:
            required.add('x-amz-security-token')
            if headers.get('X-Amz-Security-Token') != self.options.session_token:
                reject('missing or wrong X-Amz-Security-Token')
        if not required.issubset(signed_headers):
            reject('SignedHeaders lacks ' + ', '.join(sorted(required - set(signed_headers))))
        request = AWSRequest(method=method, url=f'http://{headers["Host"]}{path}', data=body,
                             headers={name: headers[name] for name in signed_headers})
        request.context['timestamp'] = amz_date
        signer = SigV4Auth(Credentials(access_key, self.options.secret_key, self.options.session_token),
                           'firehose', region)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, fields.get('Signature', '')):
            reject('The request signature we calculated does not match the signature you provided.')

    def check_request(self, headers, body):
        if headers.get('X-Amz-Target') != TARGET:
            raise Rejection(400, 'UnknownOperationException', 'X-Amz-Target is not ' + TARGET)
        if headers.get('Content-Type') != CONTENT_TYPE:
            raise Rejection(400, 'SerializationException', 'Content-Type is not ' + CONTENT_TYPE)
        if len(body) > MAX_REQUEST_BYTES:
            raise Rejection(413, 'InvalidArgumentException', f'request of {len(body)} bytes is over 4 MiB')
        try:
            request = json.loads(body)
        except ValueError:
            raise Rejection(400, 'SerializationException', 'the body is not JSON') from None
        if request.get('DeliveryStreamName') != self.options.stream:
            raise Rejection(400, 'ResourceNotFoundException',
                            f'Firehose {request.get("DeliveryStreamName")} under account 123456789012 not found.')
        records = request.get('Records')
        if not isinstance(records, list) or not 1 <= len(records) <= MAX_RECORDS:
            raise Rejection(400, 'InvalidArgumentException', 'Records must hold 1 to 500 records')
        decoded = []
        for record in records:
            try:
                data = base64.b64decode(record['Data'], validate=True)
            except (KeyError, TypeError, binascii.Error):
                raise Rejection(400, 'SerializationException', 'a record without base64 Data') from None
            if len(data) > MAX_RECORD_BYTES:
                raise Rejection(400, 'InvalidArgumentException', f'a record of {len(data)} bytes is over 1000 KiB')
            decoded.append(data)
        marker = self.options.reject_request_marker
        if marker and any(marker.encode() in data for data in decoded):
            raise Rejection(400, 'InvalidArgumentException', 'a record of this request can\'t be taken')
        return decoded

    def put_record_batch(self, method, path, headers, body):
        """The fault met (a name of FAULTS), the answer's status and its JSON (or bytes)."""
        with self.lock:
            self.request_count += 1
            fault = self.script.pop(0) if self.script else 'ok'
            log = {'request': self.request_count, 'body_bytes': len(body), 'fault': fault}
            if fault in ('garbage', 'reset', 'hang', 'huge'):
                log.update(status=200 if fault in ('garbage', 'huge') else None, records=0, failed=0)
                self.write(self.requests, log)
                answers = {'garbage': b'<html><body>502 Bad Gateway (but 200)</body></html>',
                           'huge': b'{"RequestResponses": "' + b'x' * (4 << 20) + b'"}'}
                return fault, 200, answers.get(fault, b'')
            try:
                if fault in ERROR_FAULTS:
                    raise Rejection(*ERROR_FAULTS[fault], f'injected fault {fault}')
                if fault == 'echo':
                    echoed = '; '.join(f'{name}: {value}' for name, value in headers.items())
                    raise Rejection(403, 'AccessDeniedException', 'You sent ' + echoed)
                self.check_signature(method, path, headers, body)
                records = self.check_request(headers, body)
            except Rejection as rejection:
                log.update(status=rejection.status, error=rejection.error_type)
                self.write(self.requests, log)
                return fault, rejection.status, {'__type': rejection.error_type, 'message': str(rejection)}
            responses = []
            for index, data in enumerate(records):
                if self.failures_left > 0 or (fault == 'partial' and index % 2 == 0):
                    self.failures_left = max(0, self.failures_left - 1)
                    responses.append({'ErrorCode': 'ServiceUnavailableException', 'ErrorMessage': 'Slow down.'})
                elif self.options.reject_marker and self.options.reject_marker.encode() in data:
                    responses.append({'ErrorCode': 'InvalidArgumentException',
                                      'ErrorMessage': 'this record can never be taken'})
                else:
                    self.write(self.records, {'request': self.request_count, 'data': data.decode('utf-8')})
                    responses.append({'RecordId': uuid.uuid4().hex})
            failed = sum('ErrorCode' in response for response in responses)
            log.update(status=200, records=len(records), failed=failed)
            self.write(self.requests, log)
            return fault, 200, {'FailedPutCount': failed, 'Encrypted': False, 'RequestResponses': responses}

    @staticmethod
    def write(log_file, entry):
        log_file.write(json.dumps(entry) + '\n')
        log_file.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive, as Firehose does

    def do_POST(self):
        options = self.server.firehose.options
        length = int(self.headers.get('Content-Length', '0'))
        body = b''
        while len(body) < length:
            if options.read_delay:
                time.sleep(options.read_delay)
            chunk = self.rfile.read(min(65536, length - len(body)))
            if not chunk:
                return
            body += chunk
        fault, status, answer = self.server.firehose.put_record_batch(self.command, self.path, self.headers, body)
        if options.answer_delay:
            time.sleep(options.answer_delay)
        if fault == 'reset':
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault == 'hang':
            time.sleep(options.hang_seconds)
            self.close_connection = True
            return
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        self.send_response(status)
        self.send_header('Content-Type', CONTENT_TYPE)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up on a hang or a slow answer is what the faults are for.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--stream', required=True)
    parser.add_argument('--region', required=True)
    parser.add_argument('--access-key', required=True)
    parser.add_argument('--secret-key', required=True)
    parser.add_argument('--session-token', default=None, help='require this X-Amz-Security-Token')
    parser.add_argument('--records', required=True, help='accepted records, JSON lines')
    parser.add_argument('--requests', required=True, help='every request and its outcome, JSON lines')
    parser.add_argument('--fail-records', type=int, default=0,
                        help='fail the first N records received with ServiceUnavailableException')
    parser.add_argument('--signature-error-status', type=int, default=403,
                        help='HTTP status for a bad signature or unknown key')
    parser.add_argument('--script', default='', help='faults met by the first requests, comma-separated')
    parser.add_argument('--reject-marker', default='', help='records holding this fail for good')
    parser.add_argument('--reject-request-marker', default='', help='requests holding such a record are refused')
    parser.add_argument('--expired-token', default='', help='this session token has expired')
    parser.add_argument('--answer-delay', type=float, default=0, help='seconds before each answer')
    parser.add_argument('--read-delay', type=float, default=0, help='seconds per 64 KiB of body read')
    parser.add_argument('--hang-seconds', type=float, default=60, help='how long a hang lasts')
    options = parser.parse_args()

    server = Server(('127.0.0.1', options.port), Handler)
    server.firehose = Firehose(options)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == '__main__':
    sys.exit(main())
