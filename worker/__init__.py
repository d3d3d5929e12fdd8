"""facequeue's worker: Celery task shells around an asyncio core calling Rekognition through aioboto3."""
