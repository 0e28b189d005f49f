"""Create the farm's S3 bucket (VOICEFARM_STORAGE_URL=s3://bucket[/prefix]) when it is missing.

A one-shot init step for a fresh single-host farm (deploy/compose.yaml runs it before the API):
MinIO starts with no buckets. On a real S3 the operator creates the bucket; this then only
checks that it is there and reachable with the farm's credentials.
"""

from __future__ import annotations

import sys
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from voicefarm.settings import get_settings


def main() -> None:
    settings = get_settings()
    url = urlparse(settings.storage_url)
    if url.scheme != "s3":
        print(f"storage is {url.scheme}://, not S3: nothing to create")
        return
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
    )
    try:
        client.head_bucket(Bucket=url.netloc)
        print(f"bucket {url.netloc} exists")
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            sys.exit(f"bucket {url.netloc}: {e}")
        # Outside us-east-1, S3 wants the region named again.
        where = (
            {}
            if settings.s3_region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": settings.s3_region}}
        )
        client.create_bucket(Bucket=url.netloc, **where)
        print(f"bucket {url.netloc} created")


if __name__ == "__main__":
    main()
