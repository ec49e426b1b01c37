-- Controller-hours whose cost rose by the configured ratio (2.0 = +200%) over the mean of the
-- previous N hours, by at least the configured amount. Each points at the Deployment (or other
-- controller) that caused the spike and says how much of its cluster's rise it explains.
with rules as (

    select * from {{ source('config', 'rules') }}

),

workloads as (

    select
        cluster,
        hour_start,
        namespace,
        coalesce(controller_kind, 'pod') as controller_kind,
        coalesce(controller, pod) as controller,
        sum(total_cost) as cost,
        count(distinct pod) as pods

    from {{ ref('stg_allocation') }}
    where allocation_kind = 'container'
    group by all

),

hours as (

    select distinct
        cluster,
        hour_start

    from workloads

),

dense as (

    -- every hour of the cluster for every controller, zero where it did not run
    select
        h.cluster,
        h.hour_start,
        c.namespace,
        c.controller_kind,
        c.controller,
        coalesce(w.cost, 0) as cost,
        coalesce(w.pods, 0) as pods

    from hours as h
    join (select distinct cluster, namespace, controller_kind, controller from workloads) as c
        using (cluster)
    left join workloads as w
        using (cluster, hour_start, namespace, controller_kind, controller)

),

baselined as (

    select
        d.cluster,
        d.hour_start,
        d.namespace,
        d.controller_kind,
        d.controller,
        any_value(d.cost) as cost,
        any_value(d.pods) as pods,
        avg(p.cost) as baseline_cost,
        count(p.hour_start) as baseline_hours,
        avg(p.pods) as baseline_pods

    from dense as d
    cross join rules
    join dense as p
        on p.cluster = d.cluster
        and p.namespace = d.namespace
        and p.controller_kind = d.controller_kind
        and p.controller = d.controller
        and p.hour_start >= d.hour_start - to_hours(rules.anomaly_baseline_hours)
        and p.hour_start < d.hour_start
    group by d.cluster, d.hour_start, d.namespace, d.controller_kind, d.controller

),

cluster_rise as (

    select
        cluster,
        hour_start,
        sum(greatest(cost - baseline_cost, 0)) as rise_cost

    from baselined
    group by all

),

final as (

    select
        b.cluster,
        b.hour_start,
        b.namespace,
        b.controller_kind,
        b.controller,
        cast(b.cost as decimal(38, 9)) as cost,
        cast(b.baseline_cost as decimal(38, 9)) as baseline_cost,
        cast(b.cost - b.baseline_cost as decimal(38, 9)) as increase_cost,
        (b.cost - b.baseline_cost) / nullif(b.baseline_cost, 0) as increase_ratio,
        b.pods,
        b.baseline_pods,
        (b.cost - b.baseline_cost) / nullif(r.rise_cost, 0) as share_of_cluster_rise

    from baselined as b
    join cluster_rise as r
        using (cluster, hour_start)
    cross join rules
    where b.baseline_hours = rules.anomaly_baseline_hours
        and b.baseline_cost > 0
        and b.cost >= (1 + rules.anomaly_increase_ratio) * b.baseline_cost
        and b.cost - b.baseline_cost >= rules.anomaly_min_increase_cost

)

select * from final
