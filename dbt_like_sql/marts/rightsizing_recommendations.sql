-- Containers whose mean CPU stayed under the configured share of their request in every one of
-- the last N hours of the analysis window (N and the share from config). An hour with no samples
-- is no evidence, so such a container is not flagged. The request to set is the highest hourly
-- p95 of those hours times the headroom, rounded up to a millicore.
with rules as (

    select * from {{ source('config', 'rules') }}

),

utilization as (

    select * from {{ ref('stg_utilization') }}

),

window_end as (

    select
        cluster,
        max(hour_start) + interval 1 hour as analysis_end

    from utilization
    group by all

),

recent as (

    select
        u.*,
        w.analysis_end

    from utilization as u
    join window_end as w
        using (cluster)
    cross join rules as r
    where u.hour_start >= w.analysis_end - to_hours(r.rightsizing_hours)
        and u.cpu_request_cores > 0

),

per_container as (

    select
        r.cluster,
        r.namespace,
        r.pod,
        r.container,
        any_value(r.node) as node,
        max(r.analysis_end) as analysis_end,
        max(r.cpu_request_cores) as cpu_request_cores,
        count(*) filter (where r.cpu_samples > 0) as hours_observed,
        count(*) filter (
            where r.cpu_samples > 0
                and r.cpu_usage_avg_cores < rules.rightsizing_cpu_ratio * r.cpu_request_cores
        ) as low_hours,
        max(r.cpu_usage_avg_cores) as max_hourly_mean_cores,
        max(r.cpu_usage_p95_cores) as max_hourly_p95_cores

    from recent as r
    cross join rules
    group by all

),

prices as (

    select
        cluster,
        namespace,
        pod,
        container,
        any_value(controller_kind) as controller_kind,
        any_value(controller) as controller,
        any_value(team) as team,
        sum(cpu_cost) / nullif(sum(cpu_core_hours), 0) as cpu_cost_per_core_hour

    from {{ ref('stg_allocation_owned') }}
    where allocation_kind = 'container'
    group by all

),

final as (

    select
        c.cluster,
        c.namespace,
        c.pod,
        c.container,
        p.controller_kind,
        p.controller,
        p.team,
        c.node,
        c.analysis_end,
        c.hours_observed,
        c.low_hours,
        c.cpu_request_cores,
        c.max_hourly_mean_cores,
        c.max_hourly_p95_cores,
        c.hours_observed = rules.rightsizing_hours and c.low_hours = rules.rightsizing_hours
            as low_utilization,
        greatest(
            ceil(round(c.max_hourly_p95_cores * rules.rightsizing_headroom * 1000, 6)) / 1000,
            rules.rightsizing_min_cpu_cores
        ) as recommended_cpu_request_cores,
        p.cpu_cost_per_core_hour

    from per_container as c
    cross join rules
    left join prices as p
        using (cluster, namespace, pod, container)

)

select
    f.*,
    case
        when f.low_utilization and f.recommended_cpu_request_cores < f.cpu_request_cores
            then cast(
                (f.cpu_request_cores - f.recommended_cpu_request_cores)
                * f.cpu_cost_per_core_hour
                * rules.hours_per_month
                as decimal(38, 9)
            )
        else cast(0 as decimal(38, 9))
    end as monthly_savings_cost

from final as f
cross join rules
