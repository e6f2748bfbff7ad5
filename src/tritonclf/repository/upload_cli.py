"""Upload a built Triton model repository to S3-compatible storage, complete versions only.

    python build/upload_repository.py model_repository s3://models-bucket/classifier/2026-11-28
    python build/upload_repository.py model_repository s3://minio.internal:9000/models/prod --prune
    make upload S3_URL=s3://127.0.0.1:9000/models/prod

The URL is the one Triton serves (``tritonserver --model-repository S3_URL``).
Credentials and region: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
AWS_DEFAULT_REGION or AWS_PROFILE, as for Triton. Unchanged versions are skipped;
new versions go up file by file with their manifest last, then the configs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tritonclf.cli_options import fail
from tritonclf.repository.object_store import UploadError, make_client, parse_s3_url, upload_repository


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("repository", type=Path, help="a repository built by build_repository.py")
    parser.add_argument("url", help="s3://bucket/path, or s3://host:port/bucket/path for an S3-compatible server")
    parser.add_argument("--region", help="default: AWS_DEFAULT_REGION, the profile's, else us-east-1")
    parser.add_argument("--prune", action="store_true", help="delete versions the local build no longer has")
    parser.add_argument("--dry-run", action="store_true", help="print the writes without making them")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Upload and print one line per write."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    args = parse_args(argv)
    try:
        location = parse_s3_url(args.url)
        operations = upload_repository(
            args.repository,
            location,
            client=make_client(location, args.region),
            prune=args.prune,
            dry_run=args.dry_run,
            progress=lambda op: print(f"{op.action} {op.path}", flush=True),
        )
    except NoCredentialsError:
        return fail(
            "upload",
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), as for Triton",
        )
    except (UploadError, BotoCoreError, ClientError) as err:
        return fail("upload", err)
    if args.dry_run:
        print("\n".join(f"would {op.action} {op.path}" for op in operations) or "nothing to do")
        return 0
    print(f"{len(operations)} writes; the store is up to date" if operations else "already up to date")
    print(f"serve it: tritonserver --model-repository {args.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
