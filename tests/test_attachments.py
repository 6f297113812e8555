"""Issue 19, point 7: attachments from the composer — what a file is (read from its bytes), each
backend's limits (upload and send), storage through Django's storage API, the signed links
backends fetch, tenancy of stored files, and how each backend is handed them.

Wire facts: Twilio takes up to 10 MediaUrl per message, 5 MB together (Twilio's "Accepted
content types for media" / MMS size limits); Evolution's sendMedia takes the file as base64
(src/validate/message.schema.ts, as tests/test_provider_evolution.py)."""
import base64
import os
import subprocess
import sys
import time

import pytest
from django.core import signing
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from accounts.providers.media import MB
from conversations.models import Conversation, Message, Upload
from conversations.upload_links import backend_media, signed_url, upload_token
from conversations.uploads import sniff, uploads_sweep
from tests.test_inbox import write_in
from tests.test_provider_evolution import CUSTOMER, gateway, instance, linked, post  # noqa: F401  (fixtures)
from tests.test_provider_evolution import account  # noqa: F401  (linked's)
from tests.test_provider_twilio import connected, inbound, twilio  # noqa: F401

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 200
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 200
PDF = b"%PDF-1.4\n" + b"menu " * 100
MP3 = b"ID3\x04\0\0\0\0\0\0" + b"\0" * 200
WAV = b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 200
HTML = b"<html><script>alert(1)</script></html>"


@pytest.fixture(autouse=True)
def storage_dir(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "uploads")
    return tmp_path / "uploads"


def upload(client, conversation, name, data, content_type="application/octet-stream", **extra):
    return client.post(f"/inbox/{conversation.pk}/uploads/", {"file": SimpleUploadedFile(name, data, content_type), **extra})


def stored_files(root) -> list[str]:
    return [os.path.join(d, f) for d, _, names in os.walk(root) for f in names]


# --- what a file is --------------------------------------------------------------------------
def test_the_type_is_read_from_the_bytes_not_the_name():
    assert [sniff(x) for x in (PNG, JPEG, PDF, MP3, WAV, b"OggS\0", b"GIF89a..")] == [
        "image/png", "image/jpeg", "application/pdf", "audio/mpeg", "audio/wav", "audio/ogg", "image/gif"]
    assert sniff(b"\0\0\0\x20ftypM4A \0\0") == "audio/mp4"
    assert sniff(b"\0\0\0\x20ftypisom\0\0") == "" and sniff(b"\0\0\0\x20ftypisom", "audio/mp4") == "audio/mp4"
    assert sniff(HTML, "image/png") == "" and sniff(b"MZ\x90\0", "application/pdf") == ""


# --- limits: refused with a clear message, nothing stored ------------------------------------
def test_upload_is_stored_and_described(admin_client, sandbox_account, storage_dir):
    conversation = write_in(sandbox_account, "in-1")
    response = upload(admin_client, conversation, "cat.png", PNG, "image/png")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["filename"], data["content_type"], data["kind"], data["size"]) == ("cat.png", "image/png", "image", len(PNG))
    row = Upload.objects.get()
    assert row.location_id == conversation.location_id and row.message is None
    assert row.file.name.startswith(f"uploads/{conversation.location_id}/") and row.file.name.endswith("/cat.png")
    [path] = stored_files(storage_dir)
    assert open(path, "rb").read() == PNG


@pytest.mark.parametrize("name,data,why", [
    ("page.png", HTML, "page.png is not an image, PDF or audio file WhatSnap can send"),
    ("empty.pdf", b"", "empty.pdf is empty."),
])
def test_what_is_no_media_is_refused(admin_client, sandbox_account, storage_dir, name, data, why):
    conversation = write_in(sandbox_account, "in-1")
    response = upload(admin_client, conversation, name, data, "image/png")
    assert response.status_code == 400 and why in response.json()["error"]
    assert not Upload.objects.exists() and not stored_files(storage_dir)


def test_each_backend_has_its_own_limits(admin_client, location, twilio, storage_dir):  # noqa: F811
    account = connected(location, twilio)
    assert inbound(account).status_code == 200
    conversation = Conversation.objects.get(account=account)
    wav = upload(admin_client, conversation, "voice.wav", WAV, "audio/wav")
    assert wav.status_code == 400
    assert wav.json()["error"] == "Support cannot send WAV files; it sends JPEG, PNG, GIF, PDF, MP3, OGG, M4A, AMR, WebM audio."
    big = upload(admin_client, conversation, "big.jpg", JPEG + b"\0" * (5 * MB), "image/jpeg")
    assert big.status_code == 400 and big.json()["error"] == "big.jpg is 5 MB; Support sends files up to 5 MB."
    assert not stored_files(storage_dir)
    # a private note takes what WhatSnap takes, whatever the account sends
    assert upload(admin_client, conversation, "voice.wav", WAV, "audio/wav", mode="note").status_code == 201


def test_the_send_checks_again_against_the_account_it_goes_through(admin_client, location, sandbox_account, twilio):  # noqa: F811
    """Uploaded for the sandbox account, sent through Twilio: Twilio's limits refuse it on the server."""
    twilio_account = connected(location, twilio)
    conversation = write_in(sandbox_account, "in-1", phone="+14155550123")
    inbound(twilio_account)  # the same contact writes through Twilio too
    wav = upload(admin_client, conversation, "voice.wav", WAV, "audio/wav").json()
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "here", "mode": "reply", "attachment": wav["id"],
                                                                       "account": twilio_account.pk}, HTTP_HX_REQUEST="true")
    assert "Support cannot send WAV files" in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists() and Upload.objects.get().message is None
    assert 'name="attachment" value="%d"' % wav["id"] in response.content.decode()  # still attached in the composer


# --- sending and showing ---------------------------------------------------------------------
def test_reply_with_image_pdf_and_audio_is_sent_and_shown(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "in-1")
    ids = [upload(admin_client, conversation, n, d).json()["id"] for n, d in (("cat.png", PNG), ("menu.pdf", PDF), ("hi.mp3", MP3))]
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "All three", "mode": "reply", "attachment": ids},
                                 HTTP_HX_REQUEST="true")
    html = response.content.decode()
    message = Message.objects.get(direction="outbound")
    assert message.status == "delivered" and message.text == "All three"
    assert [(m["upload"], m["kind"], m["url"]) for m in message.media] == [(ids[0], "image", ""), (ids[1], "document", ""),
                                                                           (ids[2], "audio", "")]
    assert set(Upload.objects.values_list("message_id", flat=True)) == {message.pk}
    assert f'<img src="/inbox/uploads/{ids[0]}/"' in html
    assert f'href="/inbox/uploads/{ids[1]}/"' in html and "menu.pdf" in html and f"{len(PDF)}\xa0bytes" in html
    assert f'<audio controls preload="metadata" src="/inbox/uploads/{ids[2]}/"' in html
    assert 'name="attachment"' not in html  # sent: the composer is empty again
    # the sandbox phone shows them too
    phone = admin_client.get(f"/sandbox/{sandbox_account.pk}/phone/?phone=%2B14155550123").content.decode()
    assert f'<img src="/inbox/uploads/{ids[0]}/"' in phone and "menu.pdf" in phone


def test_an_upload_is_sent_once(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "in-1")
    pk = upload(admin_client, conversation, "cat.png", PNG).json()["id"]
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "one", "mode": "reply", "attachment": pk})
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "two", "mode": "reply", "attachment": pk},
                                 HTTP_HX_REQUEST="true")
    assert "no longer there (sent already, or removed)" in response.content.decode()
    assert list(Message.objects.filter(direction="outbound").values_list("text", flat=True)) == ["one"]


def test_files_posted_with_the_form_without_scripts(admin_client, sandbox_account, storage_dir):
    conversation = write_in(sandbox_account, "in-1")
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "", "mode": "reply",
                                                            "files": [SimpleUploadedFile("menu.pdf", PDF, "application/pdf")]})
    message = Message.objects.get(direction="outbound")
    assert [m["filename"] for m in message.media] == ["menu.pdf"] and Upload.objects.get().message == message
    # a refused one is not left in the storage
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "x", "mode": "reply",
                                                            "files": [SimpleUploadedFile("a.png", PNG), SimpleUploadedFile("b.png", HTML)]})
    assert Upload.objects.count() == 1 and len(stored_files(storage_dir)) == 1


def test_private_note_with_a_file(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "in-1")
    pk = upload(admin_client, conversation, "voice.wav", WAV, mode="note").json()["id"]
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "", "mode": "note", "attachment": pk})
    note = Message.objects.get(is_note=True)
    assert note.media[0]["upload"] == pk and Upload.objects.get().message == note


def test_twilio_gets_signed_public_links(admin_client, location, twilio, settings):  # noqa: F811
    account = connected(location, twilio)
    inbound(account)
    settings.PUBLIC_BASE_URL = "https://inbox.example.com"
    conversation = Conversation.objects.get(account=account)
    ids = [upload(admin_client, conversation, n, d).json()["id"] for n, d in (("cat.png", PNG), ("menu.pdf", PDF))]
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Menu", "mode": "reply", "attachment": ids})
    (sent,) = twilio.messages
    assert len(sent["media_url"]) == 2
    for url, body in zip(sent["media_url"], (PNG, PDF)):
        assert url.startswith("https://inbox.example.com/media/")
        response = Client().get(url.removeprefix("https://inbox.example.com"))  # Twilio is not logged in
        assert response.status_code == 200 and b"".join(response.streaming_content) == body


def test_whatsapp_gateway_gets_the_file_itself_one_per_message(admin_client, linked, gateway, storage_dir):  # noqa: F811
    post(gateway, linked, gateway.messages_upsert(instance(linked), remote_jid=CUSTOMER))
    conversation = Conversation.objects.get()
    ids = [upload(admin_client, conversation, n, d).json()["id"] for n, d in (("cat.png", PNG), ("menu.pdf", PDF))]
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "Menu", "mode": "reply", "attachment": ids})
    first, second = [r.json for r in gateway.received("POST", f"/message/sendMedia/{instance(linked)}")]
    assert (first["mediatype"], first["caption"], base64.b64decode(first["media"]), first["fileName"]) == ("image", "Menu", PNG, "cat.png")
    assert (second["mediatype"], base64.b64decode(second["media"]), second["fileName"]) == ("document", PDF, "menu.pdf")
    assert list(Message.objects.filter(direction="outbound").order_by("pk").values_list("text", flat=True)) == ["Menu", ""]


# --- tenancy and signed links -----------------------------------------------------------------
def test_stored_files_are_served_to_members_of_their_location_only(admin_client, agent_client, outsider_client, sandbox_account):
    conversation = write_in(sandbox_account, "in-1")
    pk = upload(admin_client, conversation, "menu.pdf", PDF).json()["id"]
    response = agent_client.get(f"/inbox/uploads/{pk}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf" and response["X-Content-Type-Options"] == "nosniff"
    assert outsider_client.get(f"/inbox/uploads/{pk}/").status_code == 404
    assert Client().get(f"/inbox/uploads/{pk}/").status_code == 302  # to the login page
    # nor attached, removed or uploaded to by another location
    other = outsider_client.post(f"/inbox/{conversation.pk}/uploads/", {"file": SimpleUploadedFile("a.png", PNG)})
    assert other.status_code == 404
    assert outsider_client.post(f"/inbox/uploads/{pk}/remove/").status_code == 404 and Upload.objects.filter(pk=pk).exists()


def test_an_upload_of_another_conversation_is_not_attached(admin_client, sandbox_account):
    first = write_in(sandbox_account, "in-1", phone="+14155550123")
    second = write_in(sandbox_account, "in-2", phone="+14155550124")
    pk = upload(admin_client, first, "cat.png", PNG).json()["id"]
    response = admin_client.post(f"/inbox/{second.pk}/reply/", {"text": "x", "mode": "reply", "attachment": pk}, HTTP_HX_REQUEST="true")
    assert "no longer there" in response.content.decode() and not Message.objects.filter(direction="outbound").exists()


def test_signed_links_cannot_be_guessed_altered_or_used_late(admin_client, sandbox_account, settings, monkeypatch):
    conversation = write_in(sandbox_account, "in-1")
    a = Upload.objects.get(pk=upload(admin_client, conversation, "a.png", PNG).json()["id"])
    b = Upload.objects.get(pk=upload(admin_client, conversation, "b.pdf", PDF).json()["id"])
    anonymous = Client()
    path = signed_url(a).removeprefix(settings.PUBLIC_BASE_URL)
    assert anonymous.get(path).status_code == 200
    token = upload_token(a)
    forged = signing.dumps(b.pk, salt="another-salt", compress=False)
    assert anonymous.get(f"/media/{forged}/b.pdf").status_code == 404
    tampered = signing.b64_encode(str(b.pk).encode()).decode() + token[token.index(":"):]  # b's id, a's signature
    assert tampered != token and anonymous.get(f"/media/{tampered}/b.pdf").status_code == 404
    assert anonymous.get("/media/").status_code == 404 and anonymous.get(f"/media/{b.pk}/b.pdf").status_code == 404
    real_time = time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - settings.UPLOAD_LINK_MAX_AGE_SECONDS - 5)
    old = upload_token(a)
    monkeypatch.setattr(signing.time, "time", real_time)
    assert anonymous.get(f"/media/{old}/a.png").status_code == 404
    # a removed file's link is a 404 too
    a.delete()
    assert anonymous.get(path).status_code == 404


def test_backend_media_names_the_stored_file(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "in-1")
    row = Upload.objects.get(pk=upload(admin_client, conversation, "a.png", PNG).json()["id"])
    link = {"url": "https://cdn.example/x.jpg", "content_type": "image/jpeg"}
    out = backend_media([{"upload": row.pk, "url": ""}, link, {"upload": 999999, "url": ""}])
    assert out[0]["storage_name"] == row.file.name and out[0]["url"].startswith("http://testserver/media/")
    assert out[1] == link and out[2]["storage_name"] == "uploads/removed/999999"


# --- storage ----------------------------------------------------------------------------------
def test_unsent_uploads_are_swept_with_their_files(admin_client, sandbox_account, storage_dir, settings):
    conversation = write_in(sandbox_account, "in-1")
    kept = upload(admin_client, conversation, "sent.png", PNG).json()["id"]
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "x", "mode": "reply", "attachment": kept})
    fresh = upload(admin_client, conversation, "fresh.png", PNG).json()["id"]
    stale = upload(admin_client, conversation, "stale.png", PNG).json()["id"]
    old = timezone.now() - timezone.timedelta(hours=settings.UPLOAD_UNSENT_RETENTION_HOURS + 1)
    Upload.objects.filter(pk__in=[kept, stale]).update(created_at=old)
    assert uploads_sweep() == 1
    assert set(Upload.objects.values_list("pk", flat=True)) == {kept, fresh}
    assert sorted(os.path.basename(p) for p in stored_files(storage_dir)) == ["fresh.png", "sent.png"]


def test_file_system_by_default_s3_by_environment(tmp_path):
    """The embedded default keeps files under the var dir; UPLOADS_S3_* switch the default storage
    to django-storages' S3Storage with those options (built without contacting anything)."""
    code = ("import django; django.setup(); from django.conf import settings; from django.core.files.storage import default_storage as s;"
            "s._setup(); w = s._wrapped; print(type(w).__name__, getattr(w, 'bucket_name', None), getattr(w, 'location', None),"
            " getattr(w, 'endpoint_url', None), getattr(w, 'default_acl', 'x'), getattr(w, 'querystring_auth', None), settings.MEDIA_ROOT)")
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "whatsnap.settings", "SECRET_KEY": "k", "ENCRYPTION_KEY": "k",
            "WHATSNAP_VAR_DIR": str(tmp_path)}
    for name in [n for n in base if n.startswith("UPLOADS_")]:
        base.pop(name)
    local = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, check=True).stdout.split()
    assert local[0] == "FileSystemStorage" and local[-1] == str(tmp_path / "uploads")
    s3_env = {**base, "UPLOADS_S3_BUCKET": "inbox-files", "UPLOADS_S3_ENDPOINT_URL": "http://127.0.0.1:9", "UPLOADS_S3_PREFIX": "/tenant-a/",
              "UPLOADS_S3_ACCESS_KEY_ID": "id", "UPLOADS_S3_SECRET_ACCESS_KEY": "secret"}
    s3 = subprocess.run([sys.executable, "-c", code], env=s3_env, capture_output=True, text=True, check=True).stdout.split()
    assert s3[:6] == ["S3Storage", "inbox-files", "tenant-a", "http://127.0.0.1:9", "None", "True"]


def test_the_default_storage_is_used(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "in-1")
    row = Upload.objects.get(pk=upload(admin_client, conversation, "a.png", PNG).json()["id"])
    assert default_storage.exists(row.file.name) and default_storage.size(row.file.name) == len(PNG)
