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
    "Draft saved.": "Đã lưu bản nháp.",
    "Done: %(status)s.": "Đã xong: %(status)s.",
    "A new draft references the alert. Check it and ask for approval.": "Đã tạo bản nháp mới tham chiếu cảnh báo. Kiểm tra rồi trình phê duyệt.",
    "Import finished.": "Đã nhập xong.",
    "Edit draft": "Sửa bản nháp",
    "Edit draft #%(id)s": "Sửa bản nháp #%(id)s",
    "goes only to the test group": "chỉ gửi đến nhóm thử nghiệm",
    "Start from a template:": "Bắt đầu từ mẫu:",
    "Title": "Tiêu đề",
    "Message text": "Nội dung tin nhắn",
    "Send without diacritics (không dấu)": "Gửi không dấu",
    "Category": "Loại",
    "Sender brandname": "Tên định danh (brandname)",
    "Send at (empty: on approval)": "Gửi lúc (để trống: khi được duyệt)",
    "Expires at": "Hết hiệu lực lúc",
    "CAP fields": "Trường CAP",
    "Event": "Sự kiện",
    "Instruction": "Hướng dẫn",
    "Web address": "Địa chỉ web",
    "Preview": "Xem trước",
    "Encoding": "Mã hóa",
    "Parts": "Số tin",
    "Characters left": "Ký tự còn lại",
    "Characters forcing UCS-2:": "Ký tự buộc dùng UCS-2:",
    "Without diacritics:": "Không dấu:",
    "part(s)": "tin",
    "Use không dấu": "Dùng bản không dấu",
    "Audience": "Đối tượng nhận",
    "In lists": "Trong danh sách",
    "Reported": "Nhà mạng báo cáo",
    "Time": "Thời gian",
    "Estimated time to send": "Thời gian gửi ước tính",
    "All carriers": "Tất cả nhà mạng",
    "Areas": "Địa bàn",
    "Save draft": "Lưu bản nháp",
    "Author": "Người soạn",
    "Created": "Tạo lúc",
    "No alerts yet.": "Chưa có cảnh báo nào.",
    "Approved by": "Người phê duyệt",
    "Message": "Tin nhắn",
    "On the air": "Nội dung gửi đi",
    "không dấu": "không dấu",
    "Send at": "Gửi lúc",
    "on approval": "khi được duyệt",
    "Waived": "Miễn áp dụng",
    "quiet hours": "giờ yên tĩnh",
    "daily cap": "giới hạn mỗi ngày",
    "Decisions": "Quyết định",
    "approved": "đã duyệt",
    "rejected": "đã từ chối",
    "Actions": "Thao tác",
    "Edit": "Sửa",
    "Ask for approval": "Trình phê duyệt",
    "Withdraw": "Rút lại",
    "Pause": "Tạm dừng",
    "Resume": "Tiếp tục",
    "Cancel": "Hủy",
    "Waive quiet hours": "Miễn giờ yên tĩnh",
    "Waive the daily cap per subscriber": "Miễn giới hạn số tin mỗi thuê bao trong ngày",
    "Approve and send": "Phê duyệt và gửi",
    "Reason": "Lý do",
    "Reject": "Từ chối",
    "Send update": "Gửi cập nhật",
    "Correction": "Đính chính",
    "All clear": "Báo hết nguy hiểm",
    "Exports": "Xuất dữ liệu",
    "Delivery report": "Báo cáo gửi tin",
    "Progress": "Tiến độ",
    "ETA": "Dự kiến xong sau",
    "Total": "Tổng",
    "Submitted": "Đã gửi lên",
    "Delivered": "Đã nhận",
    "Failed": "Thất bại",
    "messages/s": "tin/giây",
    "receipts/s": "báo nhận/giây",
    "messages per second": "tin mỗi giây",
    "Import": "Lần nhập",
    "File": "Tệp",
    "Kind": "Loại",
    "Rejected rows": "Dòng bị loại",
    "Per area": "Theo địa bàn",
    "no area": "không rõ địa bàn",
    "Messages per second": "Tin mỗi giây",
    "Upload subscribers": "Tải lên thuê bao",
    "File (CSV or XLSX)": "Tệp (CSV hoặc XLSX)",
    "Subscriber list (replaces the current list)": "Danh sách thuê bao (thay danh sách hiện tại)",
    "Counts per area": "Số lượng theo địa bàn",
    "Sheet (XLSX, optional)": "Trang tính (XLSX, không bắt buộc)",
    "Upload": "Tải lên",
    "Coverage": "Độ phủ",
    "In the list": "Trong danh sách",
    "Area": "Địa bàn",
    "As of": "Tính đến",
    "Conflicts": "Trùng nhà mạng khác",
    "Imports": "Các lần nhập",
    "Rows": "Số dòng",
    "Accepted": "Được nhận",
    "Brandname %(name)s registered.": "Đã đăng ký tên định danh %(name)s.",
    "Brandname %(name)s deactivated.": "Đã ngừng dùng tên định danh %(name)s.",
    "%(msisdn)s added to the test group.": "Đã thêm %(msisdn)s vào nhóm thử nghiệm.",
    "%(msisdn)s removed from the test group.": "Đã xóa %(msisdn)s khỏi nhóm thử nghiệm.",
    "The file was refused.": "Tệp bị từ chối.",
    "The import failed.": "Nhập dữ liệu thất bại.",
    "Brandnames": "Tên định danh",
    "Test group": "Nhóm thử nghiệm",
    "At most 11 Latin letters, digits, - _ . and spaces, not all digits, as registered with the authority.": "Tối đa 11 ký tự gồm chữ Latinh, chữ số, - _ . và dấu cách, không được toàn chữ số, đúng như đã đăng ký với cơ quan quản lý.",
    "Brandname": "Tên định danh",
    "Deactivated": "Đã ngừng dùng",
    "Deactivate": "Ngừng dùng",
    "Register": "Đăng ký",
    "Test alerts go only to these numbers, through the carrier chosen for each (the prefix does not tell the carrier).": "Cảnh báo thử nghiệm chỉ gửi tới các số này, qua nhà mạng được chọn cho từng số (đầu số không cho biết nhà mạng).",
    "Number": "Số thuê bao",
    "Remove": "Xóa",
    "Add": "Thêm",
    "Download the rejected rows (CSV)": "Tải các dòng bị loại (CSV)",
    "Waiting for a worker to start the import (loa worker --control).": "Đang chờ tiến trình xử lý bắt đầu nhập dữ liệu (loa worker --control).",
    "Import running": "Đang nhập dữ liệu",
    "Rows read": "Số dòng đã đọc",
    "This page refreshes itself and opens the import report when the import ends.": "Trang này tự làm mới và mở báo cáo nhập dữ liệu khi hoàn tất.",
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
