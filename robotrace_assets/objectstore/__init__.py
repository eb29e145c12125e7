"""The object store: an S3 client that works unchanged on SeaweedFS and Cloudflare R2."""
