-- What a core-hour, GiB-hour and GPU-hour cost on each cluster, per unit provisioned (workloads'
-- charged hours plus idle) and per unit actually used, to compare the IDC with the clouds.
with allocation as (

    select * from {{ ref('stg_allocation') }}

),

clusters as (

    select * from {{ source('config', 'clusters') }}

),

per_day as (

    select
        cast(hour_start as date) as day,
        cluster,
        sum(cpu_cost) as cpu_cost,
        sum(ram_cost) as ram_cost,
        sum(gpu_cost) as gpu_cost,
        sum(cpu_core_hours) as provisioned_cpu_core_hours,
        sum(ram_gib_hours) as provisioned_ram_gib_hours,
        sum(gpu_hours) as provisioned_gpu_hours,
        sum(cpu_used_core_hours) filter (where allocation_kind = 'container') as used_cpu_core_hours,
        sum(ram_used_gib_hours) filter (where allocation_kind = 'container') as used_ram_gib_hours,
        sum(gpu_hours) filter (where allocation_kind = 'container') as requested_gpu_hours

    from allocation
    group by all

),

final as (

    select
        p.day,
        p.cluster,
        c.provider,
        c.region,
        p.cpu_cost,
        p.ram_cost,
        p.gpu_cost,
        p.provisioned_cpu_core_hours,
        p.used_cpu_core_hours,
        p.provisioned_ram_gib_hours,
        p.used_ram_gib_hours,
        p.provisioned_gpu_hours,
        p.requested_gpu_hours,
        p.cpu_cost / nullif(p.provisioned_cpu_core_hours, 0) as cost_per_provisioned_core_hour,
        p.cpu_cost / nullif(p.used_cpu_core_hours, 0) as cost_per_used_core_hour,
        p.ram_cost / nullif(p.provisioned_ram_gib_hours, 0) as cost_per_provisioned_gib_hour,
        p.ram_cost / nullif(p.used_ram_gib_hours, 0) as cost_per_used_gib_hour,
        p.gpu_cost / nullif(p.provisioned_gpu_hours, 0) as cost_per_provisioned_gpu_hour,
        p.gpu_cost / nullif(p.requested_gpu_hours, 0) as cost_per_requested_gpu_hour

    from per_day as p
    left join clusters as c
        using (cluster)

)

select * from final
