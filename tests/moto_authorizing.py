#!/usr/bin/env python3
"""moto_server that authorizes every request against the caller's IAM policies (once
`/moto-api/reset-auth` says so) without re-checking its signature, writing each
decision to stderr.

moto rebuilds a query-protocol request from the form it parsed and signs that again;
the encoding it rebuilds differs from the AWS SDK for Rust's for characters such as
`:` in a tag key, so a correctly signed EC2 CreateSecurityGroup fails with AuthFailure
(moto/iam/access_control.py, IAMRequestBase.check_signature). The test of the deploy
policy is about authorization: only the signature check is left out.
"""
import sys

from moto.iam import access_control

access_control.IAMRequestBase.check_signature = lambda self: None

# Each decision on stderr (`allowed ACTION RESOURCE`, `denied ...`), for the test to
# read: which actions a verb needed, and which one was refused.
_check = access_control.IAMRequestBase.check_action_permitted


def _logged(self, resource):
    try:
        _check(self, resource)
    except Exception:
        print(f"\ndenied {self._action} {resource}", file=sys.stderr, flush=True)
        raise
    print(f"\nallowed {self._action} {resource}", file=sys.stderr, flush=True)


access_control.IAMRequestBase.check_action_permitted = _logged

from moto.server import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
