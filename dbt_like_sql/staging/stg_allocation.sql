-- One row per allocation and hour, money rounded once to 1e-9 of the fleet currency.
-- The parts (cpu .. load balancer, other) add up to total_cost exactly: other_cost takes shared,
-- external and whatever Kubecost's own rounding left between its parts and its total.
with source as (

    select * from {{ source('raw', 'allocation') }}

),

rounded as (

    select
        cluster,
        window_start as hour_start,
        name as allocation_name,
        kind as allocation_kind,
        node,
        namespace,
        controller_kind,
        controller,
        pod,
        container,
        labels,
        namespace_labels,
        coalesce(minutes, 0) as running_minutes,
        coalesce(cpu_core_hours, 0) as cpu_core_hours,
        coalesce(ram_byte_hours, 0) / 1073741824.0 as ram_gib_hours,
        coalesce(gpu_hours, 0) as gpu_hours,
        coalesce(cpu_core_usage_average, 0) * coalesce(minutes, 0) / 60.0 as cpu_used_core_hours,
        coalesce(ram_byte_usage_average, 0) * coalesce(minutes, 0) / 60.0 / 1073741824.0
            as ram_used_gib_hours,
        cast(coalesce(cpu_cost, 0) + coalesce(cpu_cost_adjustment, 0) as decimal(38, 9)) as cpu_cost,
        cast(coalesce(ram_cost, 0) + coalesce(ram_cost_adjustment, 0) as decimal(38, 9)) as ram_cost,
        cast(coalesce(gpu_cost, 0) + coalesce(gpu_cost_adjustment, 0) as decimal(38, 9)) as gpu_cost,
        cast(coalesce(pv_cost, 0) + coalesce(pv_cost_adjustment, 0) as decimal(38, 9)) as pv_cost,
        cast(coalesce(network_cost, 0) + coalesce(network_cost_adjustment, 0) as decimal(38, 9))
            as network_cost,
        cast(
            coalesce(load_balancer_cost, 0) + coalesce(load_balancer_cost_adjustment, 0)
            as decimal(38, 9)
        ) as load_balancer_cost,
        cast(total_cost as decimal(38, 9)) as total_cost

    from source

),

final as (

    select
        *,
        total_cost - cpu_cost - ram_cost - gpu_cost - pv_cost - network_cost - load_balancer_cost
            as other_cost

    from rounded

)

select * from final
