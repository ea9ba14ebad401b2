"""A local stand-in for Amazon Kinesis Data Firehose's PutRecordBatch, for the uploader's tests.

It checks every request's SigV4 signature with botocore (an implementation independent of ours),
checks PutRecordBatch's limits, appends each accepted record to --records and each request to
--requests (JSON lines, written before answering), and on request fails the first --fail-records
records it receives with ServiceUnavailableException. It listens on 127.0.0.1 (--port 0: any free
port), prints the port on a line of its own, and serves until it is killed.
"""

import argparse
import base64
import binascii
import datetime
import hmac
import json
import sys
import threading
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


class Firehose:
    def __init__(self, options):
        self.options = options
        self.lock = threading.Lock()
        self.failures_left = options.fail_records
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
        return decoded

    def put_record_batch(self, method, path, headers, body):
        """The answer's status and JSON."""
        with self.lock:
            self.request_count += 1
            log = {'request': self.request_count, 'body_bytes': len(body)}
            try:
                self.check_signature(method, path, headers, body)
                records = self.check_request(headers, body)
            except Rejection as rejection:
                log.update(status=rejection.status, error=rejection.error_type)
                self.write(self.requests, log)
                return rejection.status, {'__type': rejection.error_type, 'message': str(rejection)}
            responses = []
            for data in records:
                if self.failures_left > 0:
                    self.failures_left -= 1
                    responses.append({'ErrorCode': 'ServiceUnavailableException', 'ErrorMessage': 'Slow down.'})
                else:
                    self.write(self.records, {'request': self.request_count, 'data': data.decode('utf-8')})
                    responses.append({'RecordId': uuid.uuid4().hex})
            failed = sum('ErrorCode' in response for response in responses)
            log.update(status=200, records=len(records), failed=failed)
            self.write(self.requests, log)
            return 200, {'FailedPutCount': failed, 'Encrypted': False, 'RequestResponses': responses}

    @staticmethod
    def write(log_file, entry):
        log_file.write(json.dumps(entry) + '\n')
        log_file.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'  # keep-alive, as Firehose does

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        status, answer = self.server.firehose.put_record_batch(self.command, self.path, self.headers, body)
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header('Content-Type', CONTENT_TYPE)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


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
    options = parser.parse_args()

    server = ThreadingHTTPServer(('127.0.0.1', options.port), Handler)
    server.daemon_threads = True
    server.firehose = Firehose(options)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == '__main__':
    sys.exit(main())
