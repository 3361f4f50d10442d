"""Chinese and English strings for what siyu prints to people (SIYU_LANG=zh|en)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "demo.title": {
        "zh": "siyu 演示：一个全渠道品牌集团",
        "en": "siyu demo: an omnichannel brand group",
    },
    "step.generate": {"zh": "生成模拟品牌数据", "en": "Generating the brand's data"},
    "step.import": {"zh": "导入", "en": "Importing"},
    "step.resolve": {"zh": "OneID 身份合并", "en": "Resolving OneID"},
    "step.match": {"zh": "概率匹配（Splink）", "en": "Probabilistic matching (Splink)"},
    "step.evaluate": {"zh": "对照真实身份评估", "en": "Evaluating against the truth"},
    "step.operations": {
        "zh": "积分入账、储值与库存",
        "en": "Settling points, stored value and stock",
    },
    "step.snapshot": {"zh": "计算运营看板数据", "en": "Computing the console's figures"},
    "step.tags": {"zh": "计算自动标签", "en": "Computing the automatic tags"},
    "step.marketing": {
        "zh": "发券、核销、抽奖与活动报告",
        "en": "Issuing, redeeming, drawing and the campaign report",
    },
    "table.campaign": {"zh": "活动「{code}」（对照组）", "en": "Campaign {code} (with a holdout)"},
    "step.guides": {
        "zh": "导购：专属绑定、业绩归属、分级与佣金",
        "en": "Guides: own guides, attribution, classes, commission",
    },
    "demo.guides": {
        "zh": "导购（{month}）：{bound} 位会员有专属导购；归属订单 {attributed}；分级 A {a} / "
        "B {b} / C {c}（{flagged} 位仅分享无成交）；佣金 {commission} 元，已解冻 {released} 元，"
        "{paid} 位导购有对账单。",
        "en": "Guides ({month}): {bound} members have their own guide; orders attributed "
        "{attributed}; classes A {a} / B {b} / C {c} ({flagged} sharing without orders); "
        "commission ¥{commission}, ¥{released} out of its freeze, statements for {paid} guides.",
    },
    "demo.guide_plans": {
        "zh": "总部任务 {code}：{tasks} 个任务分给 {guides} 位导购，{held_out} 位会员留作对照"
        "（{no_guide} 位无导购）；方案阶段「{stage}」（自 {starts} 起）：{met}/{measured} 位导购"
        "达成全部目标（{by_metric}）；培训内容 {training} 项。",
        "en": "HQ task {code}: {tasks} tasks for {guides} guides, {held_out} members held out "
        'as the control ({no_guide} without a guide); programme stage "{stage}" (from '
        "{starts}): {met} of {measured} guides met every target ({by_metric}); {training} "
        "training items.",
    },
    "guide_metric.sales_fen": {"zh": "销售额", "en": "sales"},
    "guide_metric.orders": {"zh": "订单", "en": "orders"},
    "guide_metric.shares": {"zh": "分享", "en": "shares"},
    "guide_metric.share_opens": {"zh": "浏览量", "en": "views"},
    "guide_metric.conversion_bp": {"zh": "转化率", "en": "conversion"},
    "guide_metric.refund_rate_bp": {"zh": "退款率", "en": "refund rate"},
    "demo.guide_task_note": {
        "zh": "总部任务 {code} 未分派：{why}",
        "en": "HQ task {code} not assigned: {why}",
    },
    "step.experiment": {
        "zh": "阶段实验（含真实效果）",
        "en": "Stage experiment (with a true effect)",
    },
    "table.experiment": {
        "zh": "实验「{code}」：{stage} 阶段，{start} 起 {days} 天",
        "en": "Experiment {code}: stage {stage}, {days} days from {start}",
    },
    "col.true_effect": {"zh": "真实效果", "en": "True effect"},
    "col.lift": {"zh": "测得提升", "en": "Measured lift"},
    "col.ci95": {"zh": "95% 区间", "en": "95% CI"},
    "col.contains": {"zh": "包含真值", "en": "Contains truth"},
    "metric.repurchase": {"zh": "窗口内复购", "en": "Repurchase in the window"},
    "metric.next_order": {"zh": "迈向下一单", "en": "Next order"},
    "metric.revenue_fen": {"zh": "人均收入", "en": "Revenue per member"},
    "experiment.arms": {
        "zh": "对照 {control} 人，发券 {treated} 人；发券组中窗口内本无购买的 {eligible} 人里，"
        "{back} 人因券回购（设定效果 {uplift}），核销 {redeemed} 张。",
        "en": "{control} in control, {treated} given the coupon; of the {eligible} treated "
        "who would not have bought in the window, {back} came back (true uplift {uplift}), "
        "{redeemed} coupons redeemed.",
    },
    "experiment.missed": {
        "zh": "「{metric}」的区间未包含真值：发券前两组已相差 {before}（随机分组的偶然，"
        "测得的差正是它加上真实效果 {effect}）。95% 区间约每 20 次分组错过一次；"
        "换 --seed 即换一次分组。",
        "en": "{metric}: the interval missed the truth because the arms already differed by "
        "{before} before the coupon (chance in the draw; the measured difference is that plus "
        "the true {effect}). A 95% interval misses about one draw in twenty; another --seed "
        "draws again.",
    },
    "col.figure": {"zh": "指标", "en": "Figure"},
    "col.treatment": {"zh": "实验组", "en": "Treatment"},
    "col.holdout": {"zh": "对照组", "en": "Holdout"},
    "campaign.members": {"zh": "会员数", "en": "Members"},
    "campaign.buyers": {"zh": "期间购买会员", "en": "Bought in the period"},
    "campaign.revenue": {"zh": "人均消费（元）", "en": "Revenue per member (yuan)"},
    "campaign.redeemed": {"zh": "核销券数", "en": "Coupons redeemed"},
    "campaign.lift": {
        "zh": "增量收入 {lift} 元，人均差 95% 区间 [{low}, {high}] 元，p = {p}；成本 {cost} 元",
        "en": "Incremental revenue ¥{lift}; per-member difference 95% CI [{low}, {high}], "
        "p = {p}; cost ¥{cost}",
    },
    "campaign.draws": {"zh": "抽奖：{draws}", "en": "Lottery draws: {draws}"},
    # the timings table's other rows (parts of a step, timed on their own)
    "step.evaluate_strong": {
        "zh": "评估（仅确定性合并）",
        "en": "Evaluating (deterministic merges only)",
    },
    "step.analyze": {"zh": "留存拐点与生命周期", "en": "Retention knee and lifecycle stages"},
    "table.automatic_tags": {"zh": "自动标签（持有会员数）", "en": "Automatic tags (members)"},
    "col.tag": {"zh": "标签", "en": "Tag"},
    "table.channels": {"zh": "各渠道订单", "en": "Orders by channel"},
    "table.identities": {"zh": "身份类型", "en": "Identities by type"},
    "table.per_member": {"zh": "每位会员的身份数", "en": "Identities per member"},
    "table.quality": {"zh": "OneID 质量（对照真实身份）", "en": "OneID quality vs the truth"},
    "table.import": {"zh": "导入统计", "en": "Import accounting"},
    "table.timings": {"zh": "耗时（秒）", "en": "Timings (seconds)"},
    "col.channel": {"zh": "渠道", "en": "Channel"},
    "col.orders": {"zh": "订单数", "en": "Orders"},
    "col.sales": {"zh": "实付（元）", "en": "Paid (CNY)"},
    "col.cancelled": {"zh": "其中已取消", "en": "Cancelled"},
    "demo.orders_counted": {
        "zh": "导入 {total} 单，其中 {cancelled} 单已取消（从未支付）；分析与控制台只计其余 "
        "{counted} 单（已支付和已退款）。",
        "en": "{total} orders imported, {cancelled} of them cancelled (never paid); the "
        "analytics and the console count the other {counted} (paid and refunded).",
    },
    "col.type": {"zh": "类型", "en": "Type"},
    "col.count": {"zh": "数量", "en": "Count"},
    "col.members": {"zh": "会员数", "en": "Members"},
    "col.metric": {"zh": "指标", "en": "Metric"},
    "col.value": {"zh": "数值", "en": "Value"},
    "col.kind": {"zh": "数据", "en": "Kind"},
    "col.read": {"zh": "读取", "en": "Read"},
    "col.accepted": {"zh": "接受", "en": "Accepted"},
    "col.rejected": {"zh": "拒绝", "en": "Rejected"},
    "col.inserted": {"zh": "新增记录", "en": "New records"},
    "col.step": {"zh": "步骤", "en": "Step"},
    "col.seconds": {"zh": "秒", "en": "Seconds"},
    "metric.identities": {"zh": "身份数", "en": "Identities"},
    "metric.members": {"zh": "合并后会员数", "en": "Members found"},
    "metric.true_persons": {"zh": "真实人数", "en": "True persons"},
    "metric.precision": {"zh": "成对精确率", "en": "Pairwise precision"},
    "metric.recall": {"zh": "成对召回率", "en": "Pairwise recall"},
    "metric.f1": {"zh": "F1", "en": "F1"},
    "metric.conflicts": {"zh": "拒绝合并的冲突", "en": "Conflicts refused"},
    "metric.phone_changes": {"zh": "换号（已报告）", "en": "Phone changes (reported)"},
    "metric.merges": {"zh": "合并记录", "en": "Merges recorded"},
    "table.retention": {
        "zh": "复购留存：买过 k 单的会员，{w} 天内再买的比例（会员四次）",
        "en": "Retention by order count: members with k orders back within {w} days",
    },
    "col.k": {"zh": "订单数 k", "en": "Orders k"},
    "col.eligible": {"zh": "可判定", "en": "Eligible"},
    "col.retained": {"zh": "再次购买", "en": "Came back"},
    "col.rate": {"zh": "留存率", "en": "Rate"},
    "col.stage": {"zh": "阶段", "en": "Stage"},
    "demo.knee": {
        "zh": "拐点：第 {found} 单之后会员留下来（生成器设定的真实拐点：第 {true} 单）{mark}",
        "en": "Knee found at k = {found}: members stay from then on (the generator's true "
        "knee: {true}) {mark}",
    },
    "demo.no_knee": {
        "zh": "未找到拐点：数据太少（生成器设定的真实拐点：第 {true} 单）",
        "en": "No knee found: too few members (the generator's true knee: {true})",
    },
    "table.stages": {
        "zh": "生命周期阶段（写回 member_stages）",
        "en": "Lifecycle stages (in member_stages)",
    },
    "stage.prospect": {"zh": "潜客（未下单）", "en": "no order yet"},
    "stage.new": {"zh": "新客（{k} 单）", "en": "{k} order(s), before the knee"},
    "stage.loyal": {"zh": "忠诚（达到拐点）", "en": "reached the knee"},
    "stage.at_risk": {"zh": "流失预警", "en": "gone quiet, at risk"},
    "stage.lapsed": {"zh": "已流失", "en": "silent too long"},
    "demo.done": {
        "zh": "完成，用时 {seconds:.1f} 秒。数据库：{db}",
        "en": "Done in {seconds:.1f} s. Database: {db}",
    },
    "demo.where": {"zh": "演示用的品牌集团、数据库和密钥", "en": "What the demo used"},
    "demo.where_group": {"zh": "品牌集团：{value}", "en": "Brand group: {value}"},
    "demo.where_db": {"zh": "数据库：{value}", "en": "Database: {value}"},
    "demo.where_warehouse": {"zh": "分析仓库：{value}", "en": "Warehouse: {value}"},
    "demo.where_secret": {"zh": "密钥：{value}", "en": "Secret key: {value}"},
    "demo.where_later": {
        "zh": "之后的命令（siyu keys create、siyu serve……）要作用于演示品牌，先设置：",
        "en": "To point later commands (siyu keys create, siyu serve, ...) at the demo, set:",
    },
    "demo.where_secret_env": {
        "zh": "# SIYU_SECRET_KEY：保持本次演示所用的值",
        "en": "# SIYU_SECRET_KEY: keep the one this demo ran with",
    },
    "demo.key_scope_store": {
        "zh": "（门店 {scope}，{members} 位会员）",
        "en": " (store {scope}, {members} members)",
    },
    "demo.key_scope_guide": {
        "zh": "（导购 {scope}，{members} 位会员）",
        "en": " (guide {scope}, {members} members)",
    },
    "demo.serve_later": {
        "zh": "用上面的设置运行 siyu serve，再用这些密钥登录 /console。",
        "en": "Run siyu serve with the settings above, then log in at /console with these keys.",
    },
    "serve.console_off": {
        "zh": "运营台未启用：{why}。API 照常服务。",
        "en": "The console is off: {why}. The API is served.",
    },
    "demo.console": {"zh": "运营台", "en": "Operations console"},
    "demo.console_url": {"zh": "打开 {url}", "en": "Open {url}"},
    "demo.console_key": {
        "zh": "{role} 登录密钥：{secret}",
        "en": "{role} login key: {secret}",
    },
    "demo.console_stop": {
        "zh": "运营台运行中，按 Ctrl-C 停止。",
        "en": "The console is running; Ctrl-C stops it.",
    },
    "import.summary": {
        "zh": "{kind}: 读取 {read}，接受 {accepted}，拒绝 {rejected}，新增 {inserted}",
        "en": "{kind}: read {read}, accepted {accepted}, rejected {rejected}, new {inserted}",
    },
    "import.rejects": {"zh": "被拒绝的行及原因：{path}", "en": "Rejected rows and reasons: {path}"},
    "import.members": {
        "zh": "  新增身份 {identities}，新增关联 {links}，重复会员并入已有会员 {merged}，"
        "会员换新卡 {moved}",
        "en": "  new identities {identities}, new links {links}, merged into existing members "
        "{merged}, moved to a new card {moved}",
    },
    # siyu conflicts: OneID's conflicts (identity.models.CONFLICT_KINDS), masked
    "conflicts.title": {"zh": "OneID 冲突（最新在前）", "en": "OneID conflicts (newest first)"},
    "conflicts.none": {"zh": "没有冲突。", "en": "No conflicts."},
    "conflict.exclusive_clash": {
        "zh": "身份冲突（已拒绝合并）",
        "en": "Identifier clash (merge refused)",
    },
    "conflict.phone_change": {"zh": "换号（已接受）", "en": "Phone change (accepted)"},
    "conflict.weak_ambiguous": {"zh": "弱标识多人共用", "en": "Weak identifier shared"},
    "conflict.duplicate_registration": {
        "zh": "重复注册（已接受）",
        "en": "Duplicate registration (accepted)",
    },
    "conflict.card_change": {"zh": "换卡（已接受）", "en": "Card change (accepted)"},
    "conflict.detail.exclusive_clash": {
        "zh": "已拒绝：一位会员不能同时有两个{type}（共用或录错的标识？）",
        "en": "refused: one member cannot hold two {type} identifiers (shared or mistyped?)",
    },
    "conflict.detail.phone_change": {
        "zh": "已接受：已验证的手机号先后使用",
        "en": "accepted: verified phones used one after the other",
    },
    "conflict.detail.duplicate_registration": {
        "zh": "已接受：证据表明同一品牌的两张卡属于同一人",
        "en": "accepted: evidence says two cards of one brand are one person's",
    },
    "conflict.detail.card_change": {
        "zh": "已接受：重新导入时会员换了新卡，旧卡仍归该会员",
        "en": "accepted: a re-import gave the member a new card; the earlier card stays its",
    },
    "conflict.detail.weak_ambiguous": {
        "zh": "{type}出现在多位会员上，只归属其中一位",
        "en": "{type} seen with several members; attached to one only",
    },
    "conflict.identity": {
        "zh": "{type} {value}（会员 {member}）",
        "en": "{type} {value} (member {member})",
    },
    "col.conflict": {"zh": "编号", "en": "#"},
    "col.identity_x": {"zh": "身份", "en": "Identifier"},
    "col.identity_y": {"zh": "另一身份", "en": "Other identifier"},
    "col.detail": {"zh": "说明", "en": "Detail"},
    "col.detected": {"zh": "发现时间", "en": "Detected"},
    # siyu keys list
    "keys.title": {"zh": "API 密钥（不显示密钥本身）", "en": "API keys (secrets are never shown)"},
    "keys.none": {"zh": "没有密钥。", "en": "No keys."},
    "col.key": {"zh": "密钥", "en": "Key"},
    "col.role": {"zh": "角色", "en": "Role"},
    "col.name": {"zh": "名称", "en": "Name"},
    "col.scope": {"zh": "范围", "en": "Scope"},
    "col.state": {"zh": "状态", "en": "State"},
    "keys.scope.stores": {"zh": "门店 {value}", "en": "stores {value}"},
    "keys.scope.guide_id": {"zh": "导购 {value}", "en": "guide {value}"},
    "keys.scope.channel": {"zh": "渠道 {value}", "en": "channel {value}"},
    "keys.scope.member_id": {"zh": "会员 {value}", "en": "member {value}"},
    "keys.scope.all": {"zh": "整个品牌集团", "en": "whole brand group"},
    "keys.revoked": {"zh": "已吊销（{at}）", "en": "revoked ({at})"},
    "keys.expires": {"zh": "{at} 到期", "en": "expires {at}"},
    "keys.never": {"zh": "永不过期", "en": "never expires"},
    "keys.expired": {"zh": "已过期（{at}）", "en": "expired ({at})"},
    # siyu coupons template list, siyu coupons liability
    "coupons.templates": {
        "zh": "优惠券模板（最新版本）",
        "en": "Coupon templates (newest versions)",
    },
    "coupons.none": {"zh": "没有优惠券模板。", "en": "No coupon templates."},
    "coupons.col.code": {"zh": "模板", "en": "Template"},
    "coupons.col.version": {"zh": "版本", "en": "Version"},
    "coupons.col.kind": {"zh": "类型", "en": "Kind"},
    "coupons.col.name": {"zh": "名称", "en": "Name"},
    "coupons.col.face": {"zh": "面值（元）", "en": "Face value (CNY)"},
    "coupons.col.limits": {"zh": "限额", "en": "Limits"},
    "coupons.limit.per_member": {"zh": "每人 {n}", "en": "{n} per member"},
    "coupons.limit.issued": {"zh": "发放 {n}", "en": "{n} issued"},
    "coupons.limit.redemptions": {"zh": "核销 {n}", "en": "{n} redeemed"},
    "coupons.limit.budget_fen": {"zh": "预算 ¥{n}", "en": "budget ¥{n}"},
    "coupons.limit.none": {"zh": "不限", "en": "none"},
    "coupons.liability": {
        "zh": "优惠券负债（截至 {at} UTC）",
        "en": "Coupon liability (as of {at} UTC)",
    },
    "coupons.no_events": {"zh": "截至此时没有发放过优惠券。", "en": "No coupons issued by then."},
    "coupons.col.issued": {"zh": "已发放", "en": "Issued"},
    "coupons.col.redeemed": {"zh": "已核销", "en": "Redeemed"},
    "coupons.col.returned": {"zh": "已退回", "en": "Returned"},
    "coupons.col.expired": {"zh": "已过期", "en": "Expired"},
    "coupons.col.outstanding": {"zh": "未使用", "en": "Outstanding"},
    "coupons.col.outstanding_face": {"zh": "未使用面值（元）", "en": "Outstanding face (CNY)"},
    "coupons.col.outstanding_cost": {"zh": "未使用成本（元）", "en": "Outstanding cost (CNY)"},
    "coupons.total": {"zh": "合计", "en": "Total"},
    "tasks.generated": {
        "zh": "跟进任务（拐点 {knee}，截至 {as_of}）：新建 {created}，关闭 {closed}，待跟进 {live}",
        "en": "Follow-up tasks (knee {knee}, as of {as_of}): created {created}, "
        "closed {closed}, to do {live}",
    },
    "tasks.no_snapshot": {
        "zh": "没有带拐点的生命周期快照：先运行 siyu analyze snapshot",
        "en": "no lifecycle snapshot with a knee: run siyu analyze snapshot first",
    },
}


def t(key: str, lang: str, **values: object) -> str:
    """The message `key` in `lang` (falls back to English), formatted with `values`."""
    entry = MESSAGES[key]
    return entry.get(lang, entry["en"]).format(**values)
