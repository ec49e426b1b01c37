-- Each container-hour's cost beside what it asked for and what it used.
with allocation as (

    select * from {{ ref('stg_allocation_owned') }}
    where allocation_kind = 'container'

),

utilization as (

    select * from {{ ref('stg_utilization') }}

),

final as (

    select
        a.cluster,
        a.hour_start,
        a.namespace,
        a.pod,
        a.container,
        a.controller_kind,
        a.controller,
        a.team,
        a.cost_type,
        a.total_cost,
        a.cpu_cost,
        a.ram_cost,
        a.gpu_cost,
        u.cpu_request_cores,
        u.cpu_usage_avg_cores,
        u.cpu_usage_p95_cores,
        u.cpu_usage_avg_cores / nullif(u.cpu_request_cores, 0) as cpu_request_utilization,
        u.memory_request_gib,
        u.memory_usage_avg_gib,
        u.memory_usage_avg_gib / nullif(u.memory_request_gib, 0) as memory_request_utilization,
        u.gpu_request,
        u.cpu_samples is not null as has_utilization

    from allocation as a
    left join utilization as u
        on u.cluster = a.cluster
        and u.hour_start = a.hour_start
        and u.namespace = a.namespace
        and u.pod = a.pod
        and u.container = a.container

)

select * from final
