-- Per-service load balancer cost from each allocation's lbAllocations map ("namespace/service").
with balancers as (

    select
        cluster,
        window_start as hour_start,
        kind as allocation_kind,
        unnest(lb_allocations) as lb

    from {{ source('raw', 'allocation') }}

),

final as (

    select
        cluster,
        hour_start,
        allocation_kind,
        split_part(lb.service, '/', -2) as namespace,
        split_part(lb.service, '/', -1) as service,
        cast(coalesce(lb.cost, 0) as decimal(38, 9)) as load_balancer_cost

    from balancers

)

select * from final
