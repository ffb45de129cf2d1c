# ruff: noqa: E501  (a translation table reads best one message per line)
"""The Vietnamese catalogue as data: `python -m broadcast.web.translations.vi` rewrites vi .po.

Source strings are English in the code and templates; this table is the one place a translator
edits. The command extracts the messages (pybabel), fills them from here and reports any string
that has no translation yet, so a missing one is seen, never silently English.
"""

from __future__ import annotations

VI: dict[str, str] = {
    "User %(name)s created.": "Đã tạo người dùng %(name)s.",
    "You cannot deactivate yourself.": "Bạn không thể tự khóa tài khoản của mình.",
    "Token revoked.": "Đã thu hồi mã truy cập.",
    "Too many failed attempts. Wait a minute and try again.": "Đăng nhập sai quá nhiều lần. Vui lòng đợi một phút rồi thử lại.",
    "Wrong username or password.": "Sai tên đăng nhập hoặc mật khẩu.",
    "The form has expired": "Biểu mẫu đã hết hạn",
    "Reload the page and submit it again.": "Tải lại trang và gửi lại.",
    "Invalid input": "Dữ liệu không hợp lệ",
    "Some fields were refused.": "Một số trường bị từ chối.",
    "Refused": "Bị từ chối",
    "Not allowed": "Không được phép",
    "Not found": "Không tìm thấy",
    "Please log in": "Vui lòng đăng nhập",
    "Too many attempts": "Quá nhiều lần thử",
    "Something went wrong": "Đã xảy ra lỗi",
    "The error has been logged.": "Lỗi đã được ghi lại.",
    "Draft": "Bản nháp",
    "Awaiting approval": "Chờ phê duyệt",
    "Approved": "Đã phê duyệt",
    "Scheduled": "Đã lên lịch",
    "Sending": "Đang gửi",
    "Paused": "Tạm dừng",
    "Completed": "Hoàn tất",
    "Cancelled": "Đã hủy",
    "Emergency": "Khẩn cấp",
    "Warning": "Cảnh báo",
    "Information": "Thông tin",
    "Test": "Thử nghiệm",
    "Administrator": "Quản trị viên",
    "Drafter": "Người soạn",
    "Approver": "Người phê duyệt",
    "Carrier": "Nhà mạng",
    "Auditor": "Kiểm toán",
    "Alerts": "Cảnh báo",
    "New alert": "Soạn cảnh báo",
    "Carriers": "Nhà mạng",
    "Administration": "Quản trị",
    "Audit log": "Nhật ký kiểm toán",
    "Log out": "Đăng xuất",
    "When": "Thời điểm",
    "Who": "Người thực hiện",
    "Action": "Hành động",
    "Object": "Đối tượng",
    "Before": "Trước",
    "After": "Sau",
    "Newer": "Mới hơn",
    "Older": "Cũ hơn",
    "API token": "Mã truy cập API",
    "API token for %(user)s": "Mã truy cập API của %(user)s",
    "Copy it now: it is shown only once.": "Hãy sao chép ngay: mã chỉ hiển thị một lần.",
    "Back": "Quay lại",
    "Users": "Người dùng",
    "Username": "Tên đăng nhập",
    "Name": "Tên",
    "Role": "Vai trò",
    "Status": "Trạng thái",
    "Active": "Đang hoạt động",
    "Disabled": "Đã khóa",
    "Disable": "Khóa",
    "Enable": "Mở khóa",
    "New user": "Người dùng mới",
    "Password": "Mật khẩu",
    "Carrier (carrier users only)": "Nhà mạng (chỉ cho tài khoản nhà mạng)",
    "Create user": "Tạo người dùng",
    "API tokens": "Mã truy cập API",
    "User": "Người dùng",
    "Prefix": "Tiền tố",
    "Last used": "Lần dùng cuối",
    "Revoked": "Đã thu hồi",
    "Revoke": "Thu hồi",
    "Token name": "Tên mã truy cập",
    "Create token": "Tạo mã truy cập",
    "Log in": "Đăng nhập",
    "Back to the start page": "Về trang đầu",
}


def main() -> None:
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from babel.messages.pofile import read_po, write_po

    here = Path(__file__).resolve().parent
    web = here.parent
    root = web.parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "extract",
                "-F",
                str(web / "babel.cfg"),
                "-k",
                "_l",
                "--no-location",
                "-o",
                str(pot),
                str(root),
            ],
            check=True,
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with pot.open("rb") as fh:
            catalog = read_po(fh, locale="vi")
    missing = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if key in VI:
            message.string = VI[key]
        else:
            missing.append(key)
    catalog.language_team = "Loa <loa@localhost>"
    out = here / "vi" / "LC_MESSAGES" / "messages.po"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        write_po(fh, catalog, width=100, omit_header=False)
    for key in missing:
        print(f"untranslated: {key!r}", file=sys.stderr)
    print(f"{out}: {len(catalog) - 1} messages, {len(missing)} untranslated")


if __name__ == "__main__":
    main()
