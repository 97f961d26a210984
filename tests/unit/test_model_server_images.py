"""The model server records which images reached it."""

from __future__ import annotations

from claif_cod.testing import RecordedRequest


def test_images_lists_input_images_of_user_messages_only() -> None:
    body = {
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_image", "image_url": "data:dev"}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
            {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "data:second"}]},
            {"type": "function_call_output", "output": "x"},
        ]
    }
    request = RecordedRequest("/v1/responses", {}, body)
    assert request.images() == ["data:image/png;base64,AAAA", "data:second"]
    assert RecordedRequest("/v1/responses", {}, {}).images() == []
