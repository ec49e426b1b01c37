with allocated as (

    select * from {{ ref('cost_allocated_hourly') }}

),

final as (

    select
        cast(hour_start as date) as day,
        cluster,
        team,
        sum(allocated_cost) filter (where cost_type = 'direct') as direct_cost,
        sum(allocated_cost) filter (where cost_type = 'shared') as shared_cost,
        sum(allocated_cost) filter (where cost_type = 'idle') as idle_cost,
        sum(allocated_cost) filter (where cost_type = 'unmounted') as unmounted_cost,
        sum(allocated_cost) as total_cost

    from allocated
    group by all

)

select
    day,
    cluster,
    team,
    coalesce(direct_cost, 0) as direct_cost,
    coalesce(shared_cost, 0) as shared_cost,
    coalesce(idle_cost, 0) as idle_cost,
    coalesce(unmounted_cost, 0) as unmounted_cost,
    total_cost

from final
