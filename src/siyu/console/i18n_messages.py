"""The words of the Messages pages (issue #18), in Chinese and English (`i18n.STRINGS`
takes them in)."""

from __future__ import annotations

MESSAGE_STRINGS: dict[str, tuple[str, str]] = {
    "nav.messages": ("消息触达", "Messages"),
    "msg.title": ("消息触达", "Messages"),
    "msg.text": (
        "撰写一次发送：先保存草稿并预览触达人数与跳过原因，确认后再发送。营销消息遵守联系策略（频次上限、免打扰时段）且只发给已授权的会员。",
        "Compose a send: it is saved as a draft and previewed (who will be reached, who is "
        "skipped and why) before you send it. Marketing goes only to members who consented, "
        "within the contact policy's caps and outside quiet hours.",
    ),
    "msg.count": ("共 {n} 次发送", "Sends: {n}"),
    "msg.none": ("还没有发送。", "No send yet."),
    "msg.code": ("编号", "Code"),
    "msg.channel": ("渠道", "Channel"),
    "msg.target": ("目标", "Target"),
    "msg.state": ("状态", "State"),
    "msg.due": ("发送时间", "Goes at"),
    "msg.created": ("创建于", "Created"),
    "msg.target.segment": ("分群 {slug}", "Segment {slug}"),
    "msg.target.stage": ("阶段：{stage}", "Stage: {stage}"),
    "msg.target.experiment": ("实验 {code} / {variant}", "Experiment {code} / {variant}"),
    "msgstate.draft": ("草稿", "Draft"),
    "msgstate.held": ("待确认发送", "Awaiting send"),
    "msgstate.planned": ("已确认发送", "Sent to the outbox"),
    "msgstate.cancelled": ("已取消", "Cancelled"),
    # compose
    "msg.compose": ("撰写发送", "Compose a send"),
    "msg.f.code": ("编号（字母、数字、_.:-）", "Code (letters, digits, _.:-)"),
    "msg.f.channel": ("渠道", "Channel"),
    "msg.f.purpose": ("用途", "Purpose"),
    "purpose.marketing": ("营销", "Marketing"),
    "purpose.service": ("服务通知", "Service"),
    "msg.f.target_kind": ("目标类型", "Target"),
    "msg.f.target": ("分群编号或阶段", "Segment slug or stage"),
    "msg.f.kind.segment": ("分群", "Segment"),
    "msg.f.kind.stage": ("生命周期阶段", "Lifecycle stage"),
    "msg.f.template": ("模板编号", "Template id"),
    "msg.f.params": ("模板参数（每行 键=值）", "Template params (key=value, one a line)"),
    "msg.f.scheduled": ("计划发送时间（{tz}）", "Scheduled time ({tz})"),
    "msg.f.sender": ("发送导购（企业微信群发）", "Sending guide (WeCom group send)"),
    "msg.f.submit": ("保存草稿并预览", "Save the draft and preview"),
    "msg.bad_params": (
        "第 {line} 行：应为 键=值",
        "line {line}: expected key=value",
    ),
    "msg.bad_time": ("时间格式应为 YYYY-MM-DD HH:MM", "a time as YYYY-MM-DD HH:MM"),
    "msg.refused": ("未保存：", "Not saved:"),
    "msg.read_only": ("分析师只读，不能撰写或发送。", "Analysts read only: no compose, no send."),
    # one send
    "msg.preview": ("预览", "Preview"),
    "msg.preview_text": (
        "这些会员已按联系策略占用了频次名额；确认发送后才会进入发送队列。",
        "These members already hold their places under the caps; nothing goes out until "
        "you send it.",
    ),
    "msg.reached": ("将触达", "Will be reached"),
    "msg.deferred": ("延后（免打扰时段）", "Deferred (quiet hours)"),
    "msg.deferred_until": ("延至 {at}", "until {at}"),
    "msg.skipped": ("跳过", "Skipped"),
    "msg.reason": ("原因", "Reason"),
    "msg.members": ("会员数", "Members"),
    "reason.duplicate_after_oneid": ("同一人重复（OneID 合并）", "Duplicate person (OneID)"),
    "reason.global_holdout": ("全局对照组（不触达）", "Global holdout"),
    "reason.no_consent": ("未授权", "No consent"),
    "reason.opted_out": ("已退订", "Opted out"),
    "reason.no_identity_for_channel": ("该渠道无联系方式", "No address on the channel"),
    "reason.capped_week": ("本周已达上限", "Capped this week"),
    "reason.capped_channel_month": ("本月该渠道已达上限", "Capped this month"),
    "reason.capped_guide_day": ("导购今日已达上限", "Guide's daily cap"),
    "reason.send_cancelled": ("发送已取消", "Send cancelled"),
    "msg.send": ("确认发送", "Send"),
    "msg.cancel": ("取消发送", "Cancel"),
    "msg.plan": ("预览", "Preview"),
    "msg.done.planned": ("已预览，请确认发送或取消。", "Previewed: send it or cancel it."),
    "msg.done.sent": ("已进入发送队列。", "Sent to the outbox."),
    "msg.done.cancelled": (
        "已取消，{n} 条待发消息不再发送。",
        "Cancelled: {n} waiting messages will not go.",
    ),
    "msg.figures": ("效果", "Results"),
    "msg.fig.planned": ("待发送", "Waiting"),
    "msg.fig.retry": ("重试中", "Retrying"),
    "msg.fig.sent": ("已发出", "Sent"),
    "msg.fig.failed": ("失败", "Failed"),
    "msg.fig.delivered": ("已送达", "Delivered"),
    "msg.fig.clicked": ("已点击", "Clicked"),
    "msg.fig.buyers": ("购买人数", "Buyers"),
    "msg.fig.orders": ("订单数", "Orders"),
    "msg.fig.revenue": ("归因收入", "Revenue"),
    "msg.vs.title": ("对照全局对照组", "Against the global holdout"),
    "msg.vs.people": ("人数", "People"),
    "msg.vs.buyers": ("购买人数", "Buyers"),
    "msg.vs.rate": ("购买率", "Buyer rate"),
    "msg.vs.revenue": ("收入", "Revenue"),
    "msg.vs.per_person": ("人均收入", "Revenue per person"),
    "msg.vs.reached": ("本次触达", "Reached"),
    "msg.vs.held": ("全局对照组", "Held out"),
    "msg.vs.lift": (
        "提升 {lift}（95% 区间 {low} … {high}，p = {p}）",
        "lift {lift} (95% interval {low} … {high}, p = {p})",
    ),
    "msg.vs.none": (
        "无法估计（对照组无人购买，或一方没有差异）",
        "not estimable (no held-out buyer, or a side that does not vary)",
    ),
    "msg.vs.note": (
        "两组都是本次可触达的人，仅按全局对照组的哈希分开；"
        "订单为发送时间起 {days} 天内所有渠道（含门店）的全部订单，不止归因于本次发送的。",
        "Both sides are people this send could reach, split by the global holdout's hash "
        "alone; the orders are all of theirs from every channel, the till included, within "
        "{days} days of the send's time, not only those attributed to it.",
    ),
    "msg.fig.note": (
        "收入按末次触达归因：发送后 {days} 天内的订单（已取消的不计）。",
        "Revenue by last touch: orders within {days} days after the message (cancelled "
        "orders out).",
    ),
    "msg.members_title": ("{code}：{figure}", "{code}: {figure}"),
    "msg.content": ("内容", "Content"),
}
