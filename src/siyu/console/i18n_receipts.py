"""The words of the receipts review pages (issue #17), in Chinese and English
(`i18n.STRINGS` takes them in)."""

from __future__ import annotations

RECEIPT_STRINGS: dict[str, tuple[str, str]] = {
    "nav.receipts": ("小票审核", "Receipts"),
    "receiptstatus.pending": ("待审核", "Pending"),
    "receiptstatus.accepted": ("已通过", "Accepted"),
    "receiptstatus.rejected": ("已驳回", "Rejected"),
    "receiptstatus.duplicate": ("重复上传", "Duplicate"),
    "rcpt.title": ("小票审核", "Receipt reviews"),
    "rcpt.text": (
        "会员上传的小票：待审核的排在最前（先传先审），按规则发放积分或优惠券。",
        "Receipts members uploaded: pending first, the longest waiting at the top; an "
        "accepted receipt earns its rule's points or coupon.",
    ),
    "rcpt.scope": ("仅显示门店 {stores} 的小票。", "Showing the receipts of {stores} only."),
    "rcpt.fig.pending": ("待审核", "Pending"),
    "rcpt.fig.accepted_today": ("今日通过", "Accepted today"),
    "rcpt.fig.rejected_today": ("今日驳回", "Rejected today"),
    "rcpt.decided_today": ("今日处理（北京时间）", "Decided today (China time)"),
    "rcpt.all": ("全部状态", "Any status"),
    "rcpt.all_stores": ("全部门店", "Any store"),
    "rcpt.count": ("共 {n} 张小票", "{n} receipts"),
    "rcpt.none": ("没有符合条件的小票。", "No receipt matches."),
    "rcpt.export_note": (
        "金额以分为单位；会员姓名已脱敏。",
        "Amounts in fen; member names masked.",
    ),
    "rcpt.no": ("小票号", "Receipt no."),
    "rcpt.store": ("门店", "Store"),
    "rcpt.amount": ("金额（元）", "Amount (yuan)"),
    "rcpt.bought": ("购买时间", "Bought"),
    "rcpt.uploaded": ("上传时间", "Uploaded"),
    "rcpt.member": ("会员", "Member"),
    "rcpt.reasons": ("审核原因", "Why"),
    "rcpt.image": ("小票照片", "Photo"),
    "rcpt.open_image": ("查看照片", "Open photo"),
    "rcpt.image_hidden": ("无权查看", "Not shown to your role"),
    "rcpt.review": ("审核", "Review"),
    "rcpt.open": ("查看", "Open"),
    "rcpt.one": ("小票 #{id}", "Receipt #{id}"),
    "rcpt.rule": ("奖励规则", "Reward rule"),
    "rcpt.tier": ("达到的档位", "Tier reached"),
    "rcpt.tier_text": ("实付满 {min}", "paid {min} or more"),
    "rcpt.points": ("{n} 积分", "{n} points"),
    "rcpt.coupon": ("优惠券：{name}", "coupon: {name}"),
    "rcpt.coupon_not_issued": ("未发放（见审核原因）", "not issued (see why)"),
    "rcpt.reward": ("已发放的奖励", "Reward given"),
    "rcpt.rewarded_at": ("发放于 {at}", "given {at}"),
    "rcpt.reward_due": (
        "奖励尚未发放；重试通过或运行 siyu receipts settle 即可补发（不会重复）。",
        "The reward is not given yet; accepting again or `siyu receipts settle` gives it "
        "(never twice).",
    ),
    "rcpt.decided": ("处理", "Decided"),
    "rcpt.by_rule": ("规则自动通过", "the rule"),
    "rcpt.no_home": ("无", "none"),
    "rcpt.decide_note": (
        "通过后按档位发放积分或优惠券（只发一次）；驳回需填写理由，会告知会员，会员可重新上传。",
        "Accepting gives the tier's points or coupon, once. Rejecting needs a reason, "
        "which the member is told; the member may upload the receipt again.",
    ),
    "rcpt.accept": ("通过", "Accept"),
    "rcpt.reject": ("驳回", "Reject"),
    "rcpt.reject_reason": ("驳回理由（最多 500 字）", "Reason to reject (at most 500 characters)"),
    "rcpt.read_only": (
        "只有总部管理员和本门店可以审核。",
        "Only HQ admins and the receipt's store decide.",
    ),
    "rcpt.refused": ("未能处理：", "Not done:"),
    "rcpt.done.accepted": ("已通过，奖励如下。", "Accepted; the reward is below."),
    "rcpt.done.rejected": (
        "已驳回，理由已记录；会员可重新上传这张小票。",
        "Rejected, the reason recorded; the member may upload this receipt again.",
    ),
    # why a receipt waits for review, and what was decided (receipts.reasons)
    "rcpt.reason.near_duplicate": (
        "疑似重复：与同店、同金额、一分钟内购买的小票相近",
        "Near-duplicate: same store and amount within a minute as",
    ),
    "rcpt.reason.duplicate": ("重复：小票号已被另一张小票占用", "Duplicate: the number is held by"),
    "rcpt.reason.over_auto_amount": (
        "金额 {amount} 超过自动通过上限 {cap}",
        "Amount {amount} above the auto-accept limit {cap}",
    ),
    "rcpt.reason.not_home_store": (
        "不是会员的归属门店（归属门店：{store}）",
        "Not the member's home store (home store: {store})",
    ),
    "rcpt.reason.every_receipt": ("该规则要求人工审核每张小票", "The rule reviews every receipt"),
    "rcpt.reason.auto_accepted": ("符合规则，自动通过", "Accepted by the rule"),
    "rcpt.reason.accepted": ("审核通过", "Accepted by a reviewer"),
    "rcpt.reason.rejected": ("审核驳回", "Rejected by a reviewer"),
    "rcpt.reason.coupon_refused": ("优惠券未发放", "Coupon not issued"),
    "rcpt.reason.other": ("其他", "Other"),
}
