"""The sign-up worker: `python -m worker` turns sign-up messages from SQS into users."""
