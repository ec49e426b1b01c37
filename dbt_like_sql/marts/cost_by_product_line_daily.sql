with allocated as (

    select * from {{ ref('cost_allocated_hourly') }}

),

final as (

    select
        cast(hour_start as date) as day,
        product_line,
        sum(allocated_cost) filter (where cost_type = 'direct') as direct_cost,
        sum(allocated_cost) filter (where cost_type <> 'direct') as shared_and_idle_cost,
        sum(allocated_cost) as total_cost

    from allocated
    group by all

)

select
    day,
    product_line,
    coalesce(direct_cost, 0) as direct_cost,
    coalesce(shared_and_idle_cost, 0) as shared_and_idle_cost,
    total_cost

from final
