-- 0003_catalogue.sql — the catalogue every node starts with: case categories, case
-- statuses and the data elements of the plans lienthong serves (DOMAIN.md; seeds
-- 003 and 004). Data, not code: later migrations and the top node's metadata edit it.

INSERT INTO lt.case_category (bit, code, name_vi, name_en) VALUES
 (0,  'at_risk',            'Trẻ em có nguy cơ lao động trẻ em',                      'Child at risk of child labour'),
 (1,  'child_labour',       'Trẻ em lao động trái quy định của pháp luật',             'Child labourer'),
 (2,  'labour_trafficked',  'Trẻ em bị mua bán để bóc lột sức lao động',               'Child trafficked for labour exploitation'),
 (3,  'a_orphan',           'Trẻ em mồ côi cả cha và mẹ',                             'Orphan (both parents)'),
 (4,  'b_abandoned',        'Trẻ em bị bỏ rơi',                                       'Abandoned child'),
 (5,  'c_no_carer',         'Trẻ em không nơi nương tựa',                             'Child without anyone to rely on'),
 (6,  'd_disability',       'Trẻ em khuyết tật',                                      'Child with a disability'),
 (7,  'dd_hiv',             'Trẻ em nhiễm HIV/AIDS',                                  'Child living with HIV/AIDS'),
 (8,  'e_law',              'Trẻ em vi phạm pháp luật',                               'Child in conflict with the law'),
 (9,  'g_drugs',            'Trẻ em nghiện ma túy',                                   'Child with drug addiction'),
 (10, 'h_dropout_work',     'Trẻ em phải bỏ học kiếm sống chưa hoàn thành phổ cập THCS', 'Child who dropped out of school to earn a living'),
 (11, 'i_violence',         'Trẻ em bị tổn hại nghiêm trọng về thể chất và tinh thần do bị bạo lực', 'Child seriously harmed by violence'),
 (12, 'k_exploited',        'Trẻ em bị bóc lột',                                      'Exploited child (incl. illegal child labour)'),
 (13, 'l_sexual_abuse',     'Trẻ em bị xâm hại tình dục',                             'Sexually abused child'),
 (14, 'm_trafficked',       'Trẻ em bị mua bán',                                      'Trafficked child'),
 (15, 'n_severe_illness',   'Trẻ em mắc bệnh hiểm nghèo hoặc bệnh phải điều trị dài ngày thuộc hộ nghèo, cận nghèo', 'Child with a severe illness in a poor household'),
 (16, 'o_migrant',          'Trẻ em di cư, tị nạn chưa xác định được cha mẹ hoặc không có người chăm sóc', 'Migrant or refugee child without a carer');

INSERT INTO lt.case_status (code, ord, name_vi, name_en) VALUES
 ('notified',     1, 'Tiếp nhận thông báo',           'Notified'),
 ('assessed',     2, 'Đã đánh giá ban đầu',           'Initial assessment done'),
 ('emergency',    3, 'Can thiệp khẩn cấp',            'Emergency intervention'),
 ('planning',     4, 'Xây dựng kế hoạch hỗ trợ',      'Support plan being drafted'),
 ('implementing', 5, 'Thực hiện kế hoạch',            'Plan being implemented'),
 ('reviewing',    6, 'Theo dõi, đánh giá',            'Under review'),
 ('closed',       7, 'Đóng hồ sơ',                    'Closed');

INSERT INTO lt.data_element (code, name_vi, name_en, aggregation) VALUES
 ('POP_CHILD_U16',          'Số trẻ em dưới 16 tuổi',                                  'Children under 16',                                   'last'),
 ('POP_CHILD_5_17',         'Số trẻ em từ 5 đến 17 tuổi',                              'Children aged 5-17',                                  'last'),
 ('POP_CHILD_U8',           'Số trẻ em đến 8 tuổi',                                    'Children up to 8',                                    'last'),
 ('POP_CHILD_7P',           'Số trẻ em từ 7 tuổi trở lên',                             'Children aged 7 and over',                            'last'),
 ('POP_CHILD_DISABLED',     'Số trẻ em khuyết tật',                                    'Children with disabilities',                          'last'),
 ('FAMILIES_WITH_CHILDREN', 'Số hộ gia đình có trẻ em',                                'Families with children',                              'last'),
 ('OFFICIALS_TEACHERS',     'Số cán bộ, giáo viên',                                    'Officials and teachers',                              'last'),
 ('OFFICIALS_TEACHERS_INF', 'Cán bộ, giáo viên được thông tin về lao động trẻ em',     'Officials and teachers informed on child labour',     'sum'),
 ('PARENTS',                'Số cha mẹ, người chăm sóc trẻ em',                        'Parents and carers',                                  'last'),
 ('PARENTS_INF',            'Cha mẹ, người chăm sóc được thông tin về lao động trẻ em', 'Parents and carers informed on child labour',        'sum'),
 ('CHILDREN_INF',           'Trẻ em được thông tin về lao động trẻ em',                'Children informed on child labour',                   'sum'),
 ('BUSINESSES',             'Số doanh nghiệp, hợp tác xã, hộ kinh doanh',              'Businesses, cooperatives and household businesses',   'last'),
 ('BUSINESSES_INF',         'Doanh nghiệp, HTX, hộ kinh doanh được thông tin',         'Businesses informed',                                 'sum'),
 ('BUSINESSES_TRAINED',     'Doanh nghiệp, HTX, hộ kinh doanh được tập huấn, tiếp cận', 'Businesses trained or reached',                      'sum'),
 ('CULTURE_OFFICIALS',      'Số công chức văn hóa - xã hội cấp xã',                    'Commune culture-social officials',                    'last'),
 ('CULTURE_OFFICIALS_TRN',  'Công chức văn hóa - xã hội được tập huấn',                'Commune culture-social officials trained',            'sum'),
 ('AGENCY_REPS',            'Số đại diện cơ quan, đơn vị liên quan',                   'Representatives of related agencies',                 'last'),
 ('AGENCY_REPS_TRN',        'Đại diện cơ quan, đơn vị liên quan được tập huấn',        'Representatives of related agencies trained',         'sum'),
 ('FAMILIES_KNOWLEDGE',     'Hộ gia đình có trẻ em được cung cấp kiến thức bảo vệ trẻ em', 'Families with children given child-protection knowledge', 'sum'),
 ('CHILD_INJURIES',         'Số trẻ em bị tai nạn, thương tích',                       'Child injuries',                                      'sum'),
 ('CHILD_INJURY_DEATHS',    'Số trẻ em tử vong do tai nạn, thương tích',               'Child deaths from injuries',                          'sum'),
 ('CHILDREN_U8_ECD',        'Trẻ em đến 8 tuổi được tiếp cận dịch vụ phát triển toàn diện', 'Children up to 8 reached by early-childhood services', 'sum'),
 ('DISABLED_REACHED',       'Trẻ em khuyết tật được tiếp cận dịch vụ',                 'Children with disabilities reached by services',      'sum'),
 ('DISABLED_SKILLS',        'Trẻ em khuyết tật được trang bị kỹ năng hòa nhập',        'Children with disabilities given integration skills', 'sum'),
 ('CHILDREN_7P_CONSULTED',  'Trẻ em từ 7 tuổi trở lên được lấy ý kiến',                'Children aged 7+ consulted on children''s issues',    'sum'),
 ('PARENTS_INF_CL',         'Cha mẹ được thông tin về phòng ngừa lao động trẻ em',     'Parents informed on child labour prevention',         'sum'),
 ('PEOPLE_REACHED',         'Người dân và trẻ em được tiếp cận truyền thông',          'People and children reached by communication',        'sum'),
 ('PEOPLE_BEHAVIOUR',       'Người dân và trẻ em thay đổi hành vi',                    'People and children who changed behaviour',           'sum');
