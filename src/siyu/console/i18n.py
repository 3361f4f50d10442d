"""The console's words in Chinese and English, and how numbers are written.

Every string a page shows is here, keyed; a test checks both languages have every key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from siyu.channels import registry as channels
from siyu.console.i18n_guide_hq import GUIDE_HQ_STRINGS
from siyu.console.i18n_guide_own import GUIDE_OWN_STRINGS
from siyu.console.i18n_guide_programme import GUIDE_PROGRAMME_STRINGS
from siyu.console.i18n_marketing import MARKETING_STRINGS
from siyu.console.i18n_messages import MESSAGE_STRINGS
from siyu.console.i18n_receipts import RECEIPT_STRINGS
from siyu.console.i18n_segments import SEGMENT_STRINGS
from siyu.console.i18n_tag_values import TAG_VALUE_STRINGS

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    # (zh, en)
    "app": ("siyu 运营台", "siyu console"),
    "lang.switch": ("English", "中文"),
    "nav.menu": ("菜单", "Menu"),
    "nav.overview": ("总览", "Overview"),
    "nav.retention": ("复购留存", "Retention"),
    "nav.cohorts": ("同期群", "Cohorts"),
    "nav.rfm": ("RFM 分层", "RFM layers"),
    "nav.funnel": ("转化漏斗", "Funnel"),
    "nav.channels": ("渠道结构", "Channel mix"),
    "nav.members": ("会员 360", "Member 360"),
    "nav.guides": ("导购", "Guides"),
    "nav.stores": ("门店", "Stores"),
    "nav.my_members": ("我的会员", "My members"),
    "nav.tasks": ("跟进任务", "Tasks"),
    "nav.reviews": ("OneID 匹配审核", "OneID match reviews"),
    "login.title": ("登录", "Log in"),
    "login.key": ("API 密钥", "API key"),
    "login.help": (
        "粘贴一个 API 密钥（siyu keys create --role ...）。角色决定能看到的页面。",
        "Paste an API key (siyu keys create --role ...). Its role decides what you see.",
    ),
    "login.submit": ("登录", "Log in"),
    "login.bad_key": ("密钥无效、已吊销或已过期。", "The key is invalid, revoked or expired."),
    "login.role_refused": (
        "{role} 角色的密钥不能登录运营台（它们用于渠道对接和会员小程序）。",
        "A {role} key cannot log in to the console (it is for integrations and the "
        "member mini-program).",
    ),
    "login.too_many": (
        "登录失败次数过多，请 {minutes} 分钟后再试。",
        "Too many failed logins; try again in {minutes} minutes.",
    ),
    "login.expired": ("会话已结束，请重新登录。", "Your session ended; log in again."),
    "login.csrf": (
        "表单已过期，请重新提交。",
        "The form expired; please submit it again.",
    ),
    "logout": ("退出", "Log out"),
    "who": ("{role} · 密钥 #{key_id}", "{role} · key #{key_id}"),
    "role.admin": ("总部管理员", "HQ admin"),
    "role.analyst": ("分析师", "Analyst"),
    "role.store": ("门店", "Store"),
    "role.guide": ("导购", "Guide"),
    "role.channel": ("渠道", "Channel"),
    "role.member": ("会员", "Member"),
    "as_of": (
        "数据截至 {as_of}（计算于 {computed_at}）",
        "Data as of {as_of} (computed {computed_at})",
    ),
    "no_snapshot": (
        "还没有分析快照。运行 `siyu warehouse land` 然后 `siyu analyze snapshot`"
        "（或 `siyu demo`）。",
        "No analytics snapshot yet. Run `siyu warehouse land`, then `siyu analyze snapshot` "
        "(or `siyu demo`).",
    ),
    "error.403": ("无权访问", "Forbidden"),
    "error.403.text": (
        "你的角色不能打开这个页面或这位会员。",
        "Your role may not open this page or this member.",
    ),
    "error.404": ("未找到", "Not found"),
    "error.404.text": ("没有这个页面或这位会员。", "There is no such page or member."),
    "error.400": ("请求无效", "Bad request"),
    "back": ("返回", "Back"),
    # overview
    "overview.title": ("总览", "Overview"),
    "kpi.members": ("会员数", "Members"),
    "kpi.members.note": (
        "未被合并的会员（按注册月累计）",
        "members not merged away (cumulative by month joined)",
    ),
    "kpi.active": ("活跃会员", "Active members"),
    "kpi.active.note": ("近 {days} 天内下过单", "ordered in the last {days} days"),
    "kpi.sales": ("最近一月销售额", "Sales, latest month"),
    "kpi.sales.note": (
        "实付，所有渠道，不含已取消订单",
        "paid, every channel, cancelled orders excluded",
    ),
    # when a figure is: the data's end (not today), or the month of a series' last value
    "kpi.at": ("截至 {date}", "as of {date}"),
    "kpi.month_to": ("{month}（截至 {date}）", "{month} (to {date})"),
    "orders.note": (
        "订单：已支付和已退款的订单（退款不冲减），不含已取消（从未支付）的订单；金额为实付。",
        "Orders: paid and refunded orders (refunds not netted), without cancelled (never "
        "paid) ones; amounts are what was paid.",
    ),
    "kpi.repurchase": ("月复购率", "Monthly repurchase rate"),
    "kpi.repurchase.note": ("当月下单 ≥2 次的买家占比", "buyers with 2+ orders in the month"),
    "kpi.cross_brand": ("跨品牌购买率", "Cross-brand purchase rate"),
    "kpi.cross_brand.note": ("当月买过 ≥2 个品牌的买家占比", "buyers of 2+ brands in the month"),
    "kpi.guide_share": ("导购销售占比", "Guide share of sales"),
    "kpi.guide_share.note": ("有导购归属的销售额占比", "sales attributed to a guide"),
    "kpi.online": ("历史会员线上化率", "Historical members online"),
    "kpi.online.note": (
        "线下会员中也有线上身份的比例（累计，无月度序列）",
        "offline members also reachable online (to date, no monthly series)",
    ),
    # the base of a to-date rate, so that 100% of 3 buyers does not read like 100% of many
    "kpi.base": ("基数：{n}", "base: {n}"),
    "kpi.enrollment": ("非会员入会率", "Non-member enrollment"),
    "kpi.enrollment.note": (
        "门店非会员买家后来入会的比例（累计，无月度序列）",
        "till buyers without membership who joined later (to date, no monthly series)",
    ),
    "kpi.same_city": ("同城订单占比", "Same-city orders"),
    "kpi.same_city.note": (
        "门店所在城市的会员的订单占比（累计，无月度序列）",
        "store orders by members of the store's city (to date, no monthly series)",
    ),
    "trend": ("趋势", "Trend"),
    "sales_by_channel": ("各渠道月销售额（元）", "Sales by channel per month (CNY)"),
    "col.month": ("月份", "Month"),
    "col.channel": ("渠道", "Channel"),
    "col.orders": ("订单", "Orders"),
    "col.sales": ("销售额", "Sales"),
    "col.members": ("会员", "Members"),
    "col.buyers": ("买家", "Buyers"),
    "col.share": ("占比", "Share"),
    "col.rate": ("比率", "Rate"),
    "col.stage": ("阶段", "Stage"),
    "col.store": ("门店", "Store"),
    "col.city": ("城市", "City"),
    "col.guide": ("导购", "Guide"),
    "col.rank": ("排名", "Rank"),
    "col.member": ("会员", "Member"),
    "col.name": ("姓名", "Name"),
    "col.last_order": ("最近下单", "Last order"),
    "col.home_store": ("归属门店", "Home store"),
    "col.home_members": ("归属会员", "Home members"),
    "col.time": ("时间", "Time"),
    "col.what": ("事件", "What"),
    "col.type": ("类型", "Type"),
    "col.value": ("值", "Value"),
    "col.verified": ("已验证", "Verified"),
    "col.first_seen": ("首次出现", "First seen"),
    "col.status": ("状态", "Status"),
    "col.amount": ("金额", "Amount"),
    "col.asset": ("资产", "Asset"),
    "col.balance": ("余额", "Balance"),
    "col.kind": ("类别", "Kind"),
    "col.reference": ("关联", "Reference"),
    "col.tier": ("等级", "Tier"),
    "col.scope": ("范围", "Scope"),
    "col.since": ("起始", "Since"),
    "col.k": ("订单数 k", "Orders k"),
    "col.eligible": ("可判定", "Eligible"),
    "col.retained": ("再次购买", "Came back"),
    "col.task": ("任务", "Task"),
    "col.step": ("步骤", "Step"),
    "col.conversion": ("转化", "Conversion"),
    "col.segment": ("分层", "Segment"),
    "col.score": ("分数", "Score"),
    "col.range": ("区间", "Range"),
    "col.recency": ("最近一次（天）", "Recency (days)"),
    "col.frequency": ("频次（单）", "Frequency (orders)"),
    "col.monetary": ("金额", "Monetary"),
    "col.cohort": ("首单月", "First-order month"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    # retention
    "retention.title": ("复购留存（会员四次）", "Retention by order count"),
    "retention.text": (
        "买过 k 单的会员中，{w} 天内再次购买的比例。拐点之后会员留下来。",
        "Of members with k orders, the share who ordered again within {w} days. From the "
        "knee on, members stay.",
    ),
    "retention.knee": ("拐点：第 {k} 单", "Knee: k = {k}"),
    "retention.no_knee": ("数据中没有找到拐点。", "No knee in the data."),
    "retention.stages": ("由拐点划分的阶段", "The stages the knee produced"),
    "retention.transitions": (
        "上月阶段流转（行：月初，列：月末）",
        "Last month's moves (rows: before, columns: after)",
    ),
    "stage.prospect": ("潜客（未下单）", "Prospect (no order yet)"),
    "stage.new": ("新客（{k} 单）", "New ({k} order(s))"),
    "stage.loyal": ("忠诚（达到拐点）", "Loyal (reached the knee)"),
    "stage.at_risk": ("流失预警", "At risk (gone quiet)"),
    "stage.lapsed": ("已流失", "Lapsed (silent too long)"),
    "stage.none": ("未分阶段", "No stage yet"),
    "stage.definitions": (
        "流失预警：{at_risk}–{lapsed} 天未下单；已流失：超过 {lapsed} 天未下单（即留存窗口"
        "，留存曲线中也算流失）。以 {as_of} 为准，共 {n} 位会员。",
        "At risk: no order for {at_risk}–{lapsed} days; lapsed: no order for more than "
        "{lapsed} days (the retention window: churned on the curve too). As of {as_of}, "
        "{n} members.",
    ),
    # cohorts
    "cohorts.title": ("同期群留存", "Cohort retention"),
    "cohorts.text": (
        "按首单月份分组，之后每个月仍下单的会员比例。",
        "Members grouped by the month of their first order: the share ordering in each "
        "month after.",
    ),
    "cohorts.month_n": ("第 {n} 月", "Month {n}"),
    # rfm
    "rfm.title": ("RFM 分层", "RFM layers"),
    "rfm.text": (
        "按最近一次（天数）、频次（单数）、金额打分（1-5），映射到价值分层。"
        "这是价值分层，不是流失状态：R ≤ 2 即超过 {lapsed} 天未下单，"
        "与「复购留存」页的「已流失」同一定义，重要挽回 + 低值沉睡 = 已流失的买家。",
        "Recency (days), frequency (orders) and money scored 1-5 and mapped to value "
        "layers. These are value layers, not churn states: R ≤ 2 means no order for more "
        "than {lapsed} days, the same definition as 'Lapsed' on the retention page, so win "
        "back + dormant are the lapsed buyers.",
    ),
    "rfm.recency_edges": (
        "R 按距今天数：≤{e0} 天 5，≤{e1} 天 4，≤{e2} 天 3，≤{e3} 天 2，更久 1。"
        "F、M 按会员占比分五层；多数会员同值（如只买过 1 单）时按单数 / 金额门槛分层。",
        "R by days since the last order: ≤{e0} 5, ≤{e1} 4, ≤{e2} 3, ≤{e3} 2, longer 1. F and "
        "M by share of members; when most members share a value (one order), by order-count "
        "/ money thresholds.",
    ),
    "rfm.layers": ("分数区间的含义", "What each score means"),
    "col.definition": ("定义", "Definition"),
    "segment.vip": ("重要价值（VIP）", "VIP (high value)"),
    "segment.regular": ("重要保持", "Regulars"),
    "segment.develop": ("一般发展", "Developing"),
    "segment.win_back": ("重要挽回", "Win back"),
    "segment.dormant": ("低值沉睡", "Dormant"),
    "segment.other": ("其他", "Other"),
    # funnel
    "funnel.title": ("转化漏斗", "Funnel"),
    "funnel.text": (
        "浏览 → 加购 → 下单 → 支付，按渠道，会员去重。",
        "View → add to cart → order → pay per channel, distinct members.",
    ),
    "step.view": ("浏览", "View"),
    "step.add_to_cart": ("加购", "Add to cart"),
    "step.order": ("下单", "Order"),
    "step.pay": ("支付", "Pay"),
    # charts: a channel without a funnel
    "funnel.none": (
        "该渠道没有漏斗数据：并非每一步都有记录（电商平台只提供订单，不提供浏览和加购）。",
        "No funnel data for this channel: not every step is recorded (a marketplace shares "
        "its orders, not its shoppers' browsing and carts).",
    ),
    # channels
    "channels.title": ("渠道结构", "Channel mix"),
    "channels.sales": ("销售额占比", "Share of sales"),
    "channels.members": ("会员覆盖（可重叠）", "Members reached (overlapping)"),
    "channels.note": (
        "订单占比与销售额占比各自合计 100%。会员覆盖是在该渠道下过单的会员占全部 {n} 位"
        "买家的比例：一位会员可在多个渠道购买，所以覆盖率合计可超过 100%，不是占比。",
        "Order and sales shares each add up to 100%. Members reached is the share of all "
        "{n} buying members who ordered in the channel: a member can buy in several "
        "channels, so reach adds up to more than 100%; it is not a share.",
    ),
    "col.order_share": ("订单占比", "Order share"),
    "col.sales_share": ("销售额占比", "Sales share"),
    "col.reach": ("会员覆盖率", "Reach"),
    # member 360
    "members.title": ("会员 360", "Member 360"),
    "members.search": ("查找会员", "Find a member"),
    "members.search.help": (
        "按手机号、会员卡号、微信 OpenID 或 UnionID、天猫 OUID 等任一身份，或会员编号。",
        "By phone, member card, WeChat OpenID or UnionID, Tmall OUID or any identifier, or "
        "the member id.",
    ),
    "members.search.type": ("身份类型", "Identifier type"),
    "members.search.value": ("值", "Value"),
    "members.search.submit": ("查找", "Search"),
    "members.search.none": ("没有会员使用这个身份。", "No member has this identifier."),
    "members.search.several": (
        "多个会员在不同范围（品牌、应用）使用这个身份，请按会员编号查找。",
        "Members of several scopes (brands, apps) hold this identifier: search by member id.",
    ),
    "members.member_id": ("会员编号", "member id"),
    "members.identities": ("身份（跨渠道）", "Identities across channels"),
    "members.masked": ("已脱敏", "masked"),
    "members.orders": ("订单（最近 50 笔）", "Orders (latest 50)"),
    "members.ledger": ("积分与储值", "Points and stored value"),
    "members.statement": ("流水（最近 30 条）", "Statement (latest 30 entries)"),
    "members.tiers": ("等级", "Tiers"),
    "members.no_tier": ("暂无等级", "No tier yet"),
    "members.stage": ("生命周期阶段", "Lifecycle stage"),
    "members.tags": ("派生标签", "Derived tags"),
    "members.tags.note": (
        "由阶段、等级和身份即时推导；定义并保存的标签见下方“标签”。",
        "Derived now from stage, tiers and identities; the tags defined and kept are under Tags.",
    ),
    "members.timeline": ("时间线", "Timeline"),
    "members.merged_from": (
        "会员 {old} 已合并到 {new}，显示的是合并后的会员。",
        "Member {old} was merged into {new}; showing the survivor.",
    ),
    "members.registered": ("注册于 {at}", "Joined {at}"),
    "members.none": ("无", "none"),
    "members.expiring": ("即将到期的积分", "Points expiring"),
    "members.expiring.none": ("没有待到期的积分。", "No points due to expire."),
    "members.expiring.note": (
        "已过期的积分不计入余额（即使过期任务尚未运行）。",
        "Points past their date are never in the balance, even before the expiry job runs.",
    ),
    "members.expiring.on": ("到期日", "Expires on"),
    "members.recorded": ("记账时间", "Recorded"),
    "tag.multichannel": ("多渠道（{n} 个渠道）", "Multichannel ({n} channels)"),
    "tag.online_offline": ("线上线下都有", "Online and offline"),
    "tag.merged": ("OneID 合并过", "Merged by OneID"),
    "asset.points": ("积分", "Points"),
    "asset.sv_principal": ("储值本金", "Stored value"),
    "asset.sv_bonus": ("储值赠送", "Stored value bonus"),
    # Every code a page shows has its label here, by kind (`label(kind, code)`); a test
    # builds the codes from their tables (tests/console/test_console_labels.py).
    # identity types (identity.types.IDENTITY_TYPES)
    "idtype.phone": ("手机号", "Phone"),
    "idtype.phone_hash": ("手机号哈希", "Phone hash"),
    "idtype.unionid": ("微信 UnionID", "WeChat UnionID"),
    "idtype.openid": ("微信 OpenID", "WeChat OpenID"),
    "idtype.external_userid": ("企业微信外部联系人", "WeCom external contact"),
    "idtype.tmall_ouid": ("天猫 OUID", "Tmall OUID"),
    "idtype.jd_pin": ("京东 PIN", "JD PIN"),
    "idtype.douyin_open_id": ("抖音 OpenID", "Douyin OpenID"),
    "idtype.youzan_id": ("有赞买家 ID", "Youzan buyer ID"),
    "idtype.card": ("会员卡号", "Member card"),
    "idtype.device_id": ("设备 ID", "Device ID"),
    "idtype.nickname": ("昵称", "Nickname"),
    "idtype.email": ("邮箱", "E-mail"),
    # ledger posting kinds (ledger.models.POSTING_KINDS)
    "posting.earn": ("消费得积分", "Points earned"),
    "posting.spend": ("积分抵扣", "Points spent"),
    "posting.adjust": ("人工调整", "Adjustment"),
    "posting.expire": ("积分过期", "Points expired"),
    "posting.top_up": ("储值充值", "Top-up"),
    "posting.pay": ("储值支付", "Stored-value payment"),
    "posting.refund_top_up": ("充值退款", "Top-up refunded"),
    "posting.clawback": ("退款扣回", "Clawed back on refund"),
    "posting.merge": ("合并转入", "Moved by a merge"),
    "posting.unmerge": ("撤销合并转回", "Moved back (merge undone)"),
    # member statuses (identity.models.MEMBER_STATUSES), order statuses (ORDER_STATUSES)
    "status.active": ("正常", "Active"),
    "status.merged": ("已合并", "Merged"),
    "status.paid": ("已支付", "Paid"),
    "status.cancelled": ("已取消", "Cancelled"),
    "status.refunded": ("已退款", "Refunded"),
    # behaviour events (orders.models.EVENT_TYPES)
    "event.view": ("浏览", "Viewed"),
    "event.add_to_cart": ("加购", "Added to cart"),
    "event.order": ("下单", "Ordered"),
    "event.pay": ("支付", "Paid"),
    "event.share": ("分享", "Shared"),
    "event.scan": ("扫码", "Scanned a code"),
    "event.wecom_add": ("添加企业微信", "Added on WeCom"),
    "event.wecom_remove": ("删除企业微信", "Removed on WeCom"),
    "event.follow": ("关注公众号", "Followed"),
    "event.unfollow": ("取消关注", "Unfollowed"),
    "event.sign_in": ("签到", "Signed in"),
    "event.read": ("阅读", "Read"),
    "event.like": ("点赞", "Liked"),
    "event.survey": ("答问卷", "Answered a survey"),
    # tier changes (ledger.models.TIER_REASONS) and scopes; tier codes are the brand's
    # own: their names come from the tier rules (ledger.program)
    "tier.upgrade": ("升级", "Upgrade"),
    "tier.downgrade": ("降级", "Downgrade"),
    "tier.grace": ("保级宽限", "Grace period"),
    "tier.merge": ("会员合并", "Member merge"),
    "tier.scope_group": ("全集团", "Whole group"),
    # OneID merges (identity.models.MERGE_MODES)
    "merge.batch": ("批量 OneID", "Batch OneID"),
    "merge.incremental": ("实时 OneID", "Real-time OneID"),
    "merge.manual": ("人工合并", "Merged by hand"),
    "merge.import": ("导入重复会员", "Duplicate member imported"),
    "merge.probabilistic": ("概率匹配自动合并", "Probabilistic match, merged automatically"),
    "merge.review": ("审核通过合并", "Accepted in review"),
    # probabilistic match reviews (identity.models.REVIEW_STATUSES)
    "review.pending": ("待审核", "Pending"),
    "review.accepted": ("已接受", "Accepted"),
    "review.rejected": ("已拒绝", "Rejected"),
    "review.merged": ("已自动合并", "Merged automatically"),
    "review.undone": ("已撤销", "Undone"),
    # the review queue's pages (console/review_pages.py)
    "reviews.title": ("OneID 匹配审核", "OneID match reviews"),
    "reviews.text": (
        "概率匹配介于审核阈值和自动合并阈值之间的会员对，按匹配权重从高到低排列。"
        "接受即合并（可撤销），拒绝后这对会员不会再被提出。",
        "Member pairs whose match probability lies between the review and the auto-merge "
        "thresholds, strongest first. Accepting merges them (undoable); a rejected pair is "
        "never proposed again.",
    ),
    "reviews.count": ("共 {n} 对", "{n} pairs"),
    "reviews.none": ("没有这个状态的会员对。", "No pairs in this status."),
    "reviews.member_a": ("会员 A", "Member A"),
    "reviews.member_b": ("会员 B", "Member B"),
    "reviews.weight": ("匹配权重", "Match weight"),
    "reviews.probability": ("匹配概率", "Match probability"),
    "reviews.detected": ("发现于", "Found"),
    "reviews.decided": ("决定于", "Decided"),
    "reviews.open": ("对照查看", "Compare"),
    "reviews.pair_title": ("匹配审核 #{id}", "Match review #{id}"),
    "reviews.model": ("模型 #{id}", "model #{id}"),
    "reviews.merge": ("合并记录 #{id}", "merge #{id}"),
    "reviews.by_key": ("密钥 #{key_id}", "key #{key_id}"),
    "reviews.by_run": ("匹配任务", "the matching run"),
    "reviews.same_member": (
        "这两位已是同一会员（#{id}）：接受不会再合并。",
        "These two are one member already (#{id}): accepting merges nothing.",
    ),
    "reviews.now_in": ("现已并入", "now part of"),
    "reviews.fields": ("各字段的匹配权重", "Match weight per field"),
    "reviews.fields.note": (
        "权重是该字段贝叶斯因子以 2 为底的对数：正值支持是同一人，负值反对；比较结果不含个人信息。",
        "A weight is log2 of the field's Bayes factor: positive for one person, negative "
        "against. Comparisons are labels, never personal values.",
    ),
    "reviews.field": ("字段", "Field"),
    "reviews.level": ("比较结果", "Comparison"),
    "reviews.for": ("支持", "for"),
    "reviews.against": ("反对", "against"),
    "reviews.members": ("两位会员对照", "The two members side by side"),
    "reviews.gender": ("性别", "Gender"),
    "reviews.birth_date": ("出生日期", "Birth date"),
    "reviews.postcode": ("邮编", "Postcode"),
    "reviews.registered_at": ("注册日期", "Registered"),
    "reviews.accept": ("接受并合并", "Accept and merge"),
    "reviews.reject": ("拒绝", "Reject"),
    "reviews.decide_note": (
        "接受会合并两位会员（注册较早者保留，合并可撤销）；拒绝后这对会员不会再被提出。",
        "Accepting merges the two (the earlier registered stays; the merge can be undone); "
        "a rejected pair is never proposed again.",
    ),
    "reviews.read_only": ("只有总部管理员可以决定。", "Only HQ admins decide."),
    "reviews.accepted": (
        "已接受：两位会员已合并为 #{id}。",
        "Accepted: the two are now member #{id}.",
    ),
    "reviews.rejected": (
        "已拒绝：两位会员保持不变，这对会员不会再被提出。",
        "Rejected: both members stay as they are, and the pair is never proposed again.",
    ),
    "reviews.refused": ("无法决定", "Cannot decide"),
    "reviews.refused.decided": (
        "审核 #{id} 当前为「{status}」：只有待审核的会员对可以接受或拒绝。",
        "Review #{id} is {status}: only a pending pair can be accepted or rejected.",
    ),
    "reviews.refused.strong": (
        "两位会员各有一个{type}，一位会员不能同时持有两个：强标识优先于概率匹配。",
        "Each member holds a {type} of its own, and one member cannot hold two: a strong "
        "identifier wins over a probability.",
    ),
    "reviews.refused.changed": (
        "两位会员刚刚被其他操作改变，请重新打开后再试。",
        "The two members were just changed by another operation; open the pair again.",
    ),
    # the fields probabilistic matching compares (identity/matching), and their levels
    "matchfield.name": ("姓名", "Name"),
    "matchfield.full_name": ("姓名", "Name"),
    "matchfield.given_name": ("名", "Given name"),
    "matchfield.family_name": ("姓", "Family name"),
    "matchfield.birth_date": ("出生日期", "Birth date"),
    "matchfield.gender": ("性别", "Gender"),
    "matchfield.city": ("城市", "City"),
    "matchfield.address": ("地址", "Address"),
    "matchfield.postcode": ("邮编", "Postcode"),
    "matchfield.email": ("邮箱", "E-mail"),
    "matchfield.phone": ("手机号", "Phone"),
    "matchfield.nickname": ("昵称", "Nickname"),
    "matchfield.device_id": ("设备", "Device"),
    "matchlevel.exact": ("完全一致", "Exact"),
    "matchlevel.one digit off": ("差一位", "One digit off"),
    "matchlevel.two digits off": ("差两位", "Two digits off"),
    "matchlevel.transposed": ("两位颠倒", "Two digits swapped"),
    "matchlevel.similar": ("相近", "Similar"),
    "matchlevel.different": ("不同", "Different"),
    "matchlevel.missing": ("缺失", "Missing"),
    # member genders (the importer's `gender`)
    "gender.f": ("女", "Female"),
    "gender.m": ("男", "Male"),
    "gender.u": ("未知", "Unknown"),
    "tl.order": (
        "下单 {order_id}（{channel}，{amount}）",
        "Order {order_id} ({channel}, {amount})",
    ),
    "tl.refund": ("退款 {order_id}（{amount}）", "Refund of {order_id} ({amount})"),
    "tl.event": ("行为：{type}（{channel}）", "Event: {type} ({channel})"),
    "tl.posting": ("账户：{kind} {amount} {asset}", "Ledger: {kind} {amount} {asset}"),
    "tl.identity": ("身份首次出现：{type}（{channel}）", "Identity first seen: {type} ({channel})"),
    "tl.merge": (
        "合并：会员 {merged} → {survivor}（{mode}）",
        "Merge: member {merged} → {survivor} ({mode})",
    ),
    "tl.merge_undone": ("（已撤销）", "(undone)"),
    "tl.tier": (
        "等级变化：{from_tier} → {to_tier}（{reason}）",
        "Tier: {from_tier} → {to_tier} ({reason})",
    ),
    # guides
    "guides.title": ("导购排行", "Guide leaderboard"),
    "guides.text": ("按归属销售额排序。", "Ranked by attributed sales."),
    "guides.members": ("{guide} 的会员", "{guide}'s members"),
    "guides.commission_link": (
        "佣金对账单（每单可查归属原因）",
        "Commission statement (each order opens why it is theirs)",
    ),
    "guides.class_link": ("导购分级与历史", "Class and its history"),
    "my.title": ("我的会员", "My members"),
    "tasks.title": ("跟进任务", "Tasks"),
    "tasks.text": (
        "按预期价值（平均客单价 × 该阶段的回购概率）排序，"
        "其次按紧迫度（距上次下单的天数占该阶段时限的比例）。",
        "Ranked by expected value (average order value × the stage's chance of another "
        "order), then urgency (days since the last order against the stage's edge).",
    ),
    "task.win_back_at_risk": ("挽回（流失预警）", "Win back (at risk)"),
    "task.win_back_lapsed": ("挽回（已流失）", "Win back (lapsed)"),
    "task.next_order": ("推动下一单（差一单到拐点）", "Next order reaches the knee"),
    "tasks.live": ("待跟进", "To do"),
    "tasks.closed": ("已关闭", "Closed"),
    "tasks.count": ("共 {n} 项", "{n} tasks"),
    "tasks.guide": ("导购", "Guide"),
    "tasks.all_guides": ("全部导购", "All guides"),
    "task.value": ("预期价值", "Expected value"),
    "task.urgency": ("紧迫度", "Urgency"),
    "task.due": ("截止日期", "Due"),
    "task.state": ("状态", "State"),
    "task.state.open": ("待跟进", "Open"),
    "task.state.contacted": ("已联系", "Contacted"),
    "task.state.done": ("已完成", "Done"),
    "task.state.dismissed": ("已忽略", "Dismissed"),
    "task.note": ("备注（可选）", "Note (optional)"),
    "task.act.contacted": ("记为已联系", "Mark contacted"),
    "task.act.done": ("完成", "Done"),
    "task.act.dismiss": ("忽略", "Dismiss"),
    "task.history": ("记录", "History"),
    "task.by_system": ("系统（按阶段）", "System (by stage)"),
    "tasks.changed": ("任务 #{id}：{state}。", "Task #{id}: {state}."),
    "tasks.refused": ("无法更改任务", "Cannot change the task"),
    "tasks.refused.text": (
        "任务 #{id} 当前为「{state}」：完成和忽略是最终状态。",
        "Task #{id} is {state}: done and dismissed are final.",
    ),
    "tasks.bad_note": (
        "备注最多 500 字，且不能含控制字符。",
        "A note is at most 500 characters, with no control characters.",
    ),
    "tasks.none": ("没有任务。", "No tasks."),
    "task.hq": ("总部任务", "HQ task"),
    "nav.guide_tasks": ("导购任务", "Guide tasks"),
    "gt.text": (
        "总部下发给导购的任务：完成情况，以及相对随机留出对照组的效果"
        "（窗口内人均销售额，95% 区间）。",
        "HQ's tasks for guides: completion, and the effect against the held-out control "
        "(revenue per member in the window, 95% interval).",
    ),
    "gt.figure.assigned": ("已下发", "Assigned"),
    "gt.figure.open": ("待跟进", "Open"),
    "gt.figure.contacted": ("已联系", "Contacted"),
    "gt.figure.done": ("已完成", "Done"),
    "gt.figure.dismissed": ("已忽略", "Dismissed"),
    "gt.figure.overdue": ("已逾期", "Overdue"),
    "gt.figure.control": ("对照组", "Control"),
    "gt.figure.no_guide": ("无导购", "No guide"),
    "gt.lift": ("人均销售额提升", "Revenue lift per member"),
    "gt.no_effect": ("暂无", "not yet"),
    "gt.none": ("还没有导购任务。", "No guide tasks yet."),
    "gt.for": ("适用", "For"),
    "gt.class": ("{c} 类导购", "Class {c} guides"),
    "gt.completed": ("已学完（导购）", "Completed (guides)"),
    "gt.no_training": ("还没有培训内容。", "No training items yet."),
    "task.script": ("话术：", "Script:"),
    "task.call": ("打电话", "Call"),
    "task.wecom": ("企业微信", "WeCom"),
    "training.title": ("培训", "Training"),
    "training.done": ("已学完", "Completed"),
    "training.complete": ("标记已学完", "Mark completed"),
    # stores
    "stores.title": ("门店", "Stores"),
    "stores.text": (
        "各门店销售额、订单、买家和归属会员。",
        "Sales, orders, buyers and home members per store.",
    ),
    "stores.members": ("{store} 的会员", "Members of {store}"),
    "stores.trend": ("近 12 个月销售额（元）", "Sales, last 12 months (CNY)"),
    "empty": ("暂无数据", "No data"),
    # member lists (segments.lists, console.member_lists): every count opens one
    "list.title": ("会员列表", "Member list"),
    "list.summary": ("共 {n} 位会员，第 {first}–{last} 位", "{n} members; {first}–{last} shown"),
    "list.none": ("没有符合条件的会员。", "No member matches."),
    "list.bad_input": ("条件无效：", "Invalid criterion:"),
    "list.filter": ("筛选", "Filter"),
    "list.any": ("不限", "Any"),
    "list.more": ("更多条件", "More criteria"),
    "list.sort": ("排序", "Sort by"),
    "list.dir": ("顺序", "Order"),
    "list.desc": ("从高到低 / 从近到远", "Highest or latest first"),
    "list.asc": ("从低到高 / 从远到近", "Lowest or earliest first"),
    "list.per": ("每页", "Per page"),
    "list.apply": ("应用", "Apply"),
    "list.clear": ("清除条件", "Clear"),
    "list.export": ("导出 CSV", "Export CSV"),
    "list.export_note": (
        "导出全部符合条件的会员，与页面显示一致。",
        "Exports every member that matches, as the page shows them.",
    ),
    "list.export_masked": (
        "导出全部符合条件的会员；手机号按您的角色脱敏，与页面一致。",
        "Exports every member that matches; phones masked for your role, as on the page.",
    ),
    "list.pages": ("分页", "Pages"),
    "list.page": ("第 {page} / {pages} 页", "Page {page} of {pages}"),
    "list.first": ("首页", "First"),
    "list.prev": ("上一页", "Previous"),
    "list.next": ("下一页", "Next"),
    "list.last": ("末页", "Last"),
    "col.phone": ("手机号", "Phone"),
    "col.spend": ("消费额", "Spend"),
    "sort.last_order": ("最近下单", "Last order"),
    "sort.orders": ("订单数", "Orders"),
    "sort.spend": ("消费额", "Spend"),
    "sort.member_id": ("会员号", "Member id"),
    "crit.stage": ("生命周期阶段", "Lifecycle stage"),
    "crit.rfm": ("RFM 分层", "RFM segment"),
    "crit.r": ("R 分数", "R score"),
    "crit.f": ("F 分数", "F score"),
    "crit.m": ("M 分数", "M score"),
    "crit.cohort": ("首单月", "First-order month"),
    "crit.active": ("首单后第几个月下单", "Ordered N months after"),
    "crit.funnel": ("漏斗渠道", "Funnel channel"),
    "crit.step": ("漏斗步骤", "Funnel step"),
    "crit.store": ("归属门店", "Home store"),
    "crit.bought_at": ("在该门店下单", "Bought at store"),
    "crit.guide": ("导购的会员", "Guide's members"),
    "crit.sold_by": ("该导购成交", "Sold by guide"),
    "crit.channel": ("在该渠道下单", "Bought in channel"),
    "crit.segment": ("分群成员", "In segment"),
    "crit.tag": ("带有标签", "Has tag"),
    "crit.until": ("数据截至", "Facts up to"),
}

STRINGS.update(SEGMENT_STRINGS)  # the segment, builder and tag pages' words
STRINGS.update(TAG_VALUE_STRINGS)  # automatic tags' values
STRINGS.update(MARKETING_STRINGS)  # coupons, campaigns, QR codes and lottery pools
STRINGS.update(RECEIPT_STRINGS)  # the receipts review queue
STRINGS.update(MESSAGE_STRINGS)  # the messages pages
STRINGS.update(GUIDE_HQ_STRINGS)  # HQ's commission, guide classes and attribution pages
# a guide's own commission, class and training; a store manager's guides (issue #19)
STRINGS.update(GUIDE_OWN_STRINGS)
STRINGS.update(GUIDE_PROGRAMME_STRINGS)  # HQ's programme report for guides


def tr(key: str, lang: str, **values: Any) -> str:
    """The string `key` in `lang`, formatted with `values`."""
    zh, en = STRINGS[key]
    text = zh if lang == "zh" else en
    return text.format(**values) if values else text


def fmt_int(value: Any) -> str:
    """12345 -> 12,345 (the grouping both languages' business documents use)."""
    return "-" if value is None else f"{int(value):,}"


def fmt_cny(fen: Any) -> str:
    """Integer fen -> ¥12,345.67 (the money stays integer until it is written)."""
    if fen is None:
        return "-"
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"


def fmt_pct(rate: Any, digits: int = 1) -> str:
    return "-" if rate is None else f"{float(rate) * 100:.{digits}f}%"


def fmt_time(value: Any) -> str:
    if value is None:
        return "-"
    if not isinstance(value, datetime):
        # SQLite answers text; only the seconds are shown (some rows carry odd fractions)
        value = datetime.fromisoformat(str(value)[:19])
    return value.strftime("%Y-%m-%d %H:%M")


def fmt_date(value: Any) -> str:
    return "-" if value is None else fmt_time(value)[:10]


def channel_label(channel: str, lang: str) -> str:
    """The channel's own label (siyu.channels: built-in or a plugin's), else its code."""
    adapter = channels.find(channel)
    label = adapter.label if adapter is not None else None
    if label is None:
        return channel
    return label.zh if lang == "zh" else label.en


def label(kind: str, code: str | None, lang: str) -> str:
    """A code as people read it: its label (`kind.code`), else the code itself."""
    if code is None or code == "":
        return "-"
    key = f"{kind}.{code}"
    return tr(key, lang) if key in STRINGS else code


def tier_label(code: str | None, names: dict[str, str]) -> str:
    """A tier as the brand named it in its tier rules (`ledger.program`), else its code."""
    return "-" if not code else names.get(code, code)


def stage_label(stage: str | None, lang: str) -> str:
    if not stage:
        return tr("stage.none", lang)
    if stage.startswith("new_"):
        return tr("stage.new", lang, k=stage[4:])
    key = f"stage.{stage}"
    return tr(key, lang) if key in STRINGS else stage
