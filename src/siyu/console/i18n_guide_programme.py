"""The words of HQ's programme report for guides (issue #19), in Chinese and English
(`i18n.STRINGS` takes them in). Metric names are those of `guides.metrics.METRICS`."""

from __future__ import annotations

GUIDE_PROGRAMME_STRINGS: dict[str, tuple[str, str]] = {
    "nav.guide_programme": ("阶段考核", "Stage targets"),
    "gp.text": (
        "按阶段考核导购：当期所处阶段的重点指标、目标与达成情况；合计按人数加总后再算比率。",
        "Guides measured by stage: the focus metrics of the stage in force for the period, "
        "their targets and who met them; the totals are rates of the summed counts.",
    ),
    "gp.since": ("开始日期", "From"),
    "gp.until": ("结束日期（不含）", "Until (not included)"),
    "gp.show": ("查看", "Show"),
    "gp.stage": ("当期阶段：{name}（自 {starts} 起）", "Stage in force: {name} (from {starts})"),
    "gp.version": ("方案第 {version} 版", "Programme version {version}"),
    "gp.met_all": (
        "{met}/{guides} 位导购达成全部目标",
        "{met} of {guides} guides met every target",
    ),
    "gp.col.guide": ("导购", "Guide"),
    "gp.col.metric": ("指标", "Metric"),
    "gp.col.met_all": ("全部达成", "Every target"),
    "gp.col.target": ("目标", "Target"),
    "gp.col.guides_met": ("达成人数", "Guides who met it"),
    "gp.totals": ("合计", "Totals"),
    "gp.yes": ("达成", "Met"),
    "gp.no": ("未达成", "Not met"),
    "gp.no_target": ("无目标", "No target"),
    "gp.spam": ("仅分享无成交", "Sharing without orders"),
    "gp.none": ("没有导购。", "No guides."),
    "gp.csv": ("导出 CSV", "Export CSV"),
    "gp.bad_period": ("日期有误：", "Bad dates:"),
    "gp.programme_missing": ("尚未设置阶段方案。", "No programme set yet."),
    "gp.programme_not_started": (
        "该期间早于方案的第一个阶段。",
        "The period is before the first stage.",
    ),
    "gp.conflict": ("无法生成报告。", "No report."),
    "gp.metric.orders": ("订单", "Orders"),
    "gp.metric.paid_fen": ("实付金额", "Paid"),
    "gp.metric.refunded_fen": ("退款金额", "Refunded"),
    "gp.metric.members_bound": ("绑定会员", "Members bound"),
    "gp.metric.buyers": ("购买会员", "Buyers"),
    "gp.metric.members_served": ("服务会员", "Members served"),
    "gp.metric.shares": ("分享次数", "Shares"),
    "gp.metric.share_opens": ("浏览量 PV", "Views (PV)"),
    "gp.metric.share_openers": ("访客数 UV", "Visitors (UV)"),
    "gp.metric.carted_openers": ("加购人数", "Visitors who carted"),
    "gp.metric.tasks_done": ("完成任务", "Tasks done"),
    "gp.metric.tasks_dismissed": ("放弃任务", "Tasks dismissed"),
    "gp.metric.tasks_overdue": ("逾期任务", "Tasks overdue"),
    "gp.metric.sales_fen": ("销售额", "Sales"),
    "gp.metric.conversion_bp": ("转化率", "Conversion"),
    "gp.metric.refund_rate_bp": ("退款率", "Refund rate"),
    "gp.metric.task_completion_bp": ("跟进完成率", "Follow-up completion"),
}
