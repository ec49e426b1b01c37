with allocation as (

    select * from {{ ref('stg_allocation') }}

),

clusters as (

    select * from {{ source('config', 'clusters') }}

),

per_hour as (

    select
        cluster,
        hour_start,
        sum(total_cost) filter (where allocation_kind = 'container') as workload_cost,
        sum(total_cost) filter (where allocation_kind = 'idle') as idle_cost,
        sum(total_cost) filter (where allocation_kind in ('unmounted', 'unallocated')) as unmounted_cost,
        sum(cpu_cost) as cpu_cost,
        sum(ram_cost) as ram_cost,
        sum(gpu_cost) as gpu_cost,
        sum(pv_cost) as pv_cost,
        sum(network_cost) as network_cost,
        sum(load_balancer_cost) as load_balancer_cost,
        sum(other_cost) as other_cost,
        sum(total_cost) as total_cost,
        sum(cpu_core_hours) as cpu_core_hours,
        sum(ram_gib_hours) as ram_gib_hours,
        sum(gpu_hours) as gpu_hours,
        count(*) filter (where allocation_kind = 'container') as containers

    from allocation
    group by all

),

final as (

    select
        p.cluster,
        c.provider,
        c.region,
        p.hour_start,
        cast(p.hour_start as date) as day,
        coalesce(p.workload_cost, 0) as workload_cost,
        coalesce(p.idle_cost, 0) as idle_cost,
        coalesce(p.unmounted_cost, 0) as unmounted_cost,
        p.cpu_cost,
        p.ram_cost,
        p.gpu_cost,
        p.pv_cost,
        p.network_cost,
        p.load_balancer_cost,
        p.other_cost,
        p.total_cost,
        p.total_cost / nullif(sum(p.total_cost) over (partition by p.hour_start), 0)
            as share_of_fleet,
        p.cpu_core_hours,
        p.ram_gib_hours,
        p.gpu_hours,
        p.containers

    from per_hour as p
    left join clusters as c
        using (cluster)

)

select * from final
